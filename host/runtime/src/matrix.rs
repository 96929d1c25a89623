//! The one run loop: a scenario's matrix of runs — sweep points × (warm-up and rounds) ×
//! backends — as `compare`, `run`, `compare --explain` and `bench` run it. Each point runs by
//! its [`Plan`]: the rounds interleave the backends (shm, msg, zenoh, shm, msg, zenoh, …) so
//! that drift on a shared machine hits them alike, and each round pairs the backends' runs
//! for the verdicts' ratios.
//!
//! [`Matrix::new`] does what must hold before any worker starts: it builds the plugins whose
//! `.wasm` is stale, loads every sweep point (the file with the point's values, then the
//! command line's overrides, which win) and checks each on every backend. A point's
//! [`Session`] (its compiled modules, its agents) is made when its first run starts and kept
//! for the rest. [`Matrix::run_all`] runs everything in order and tells the caller before and
//! after each run; [`Matrix::run_one`] runs one cell, for callers that interleave matrices
//! (`bench`'s rounds).

use std::ops::ControlFlow;

use crate::check;
use crate::record::RunRecord;
use crate::scenario::{BackendKind, Scenario};
use crate::supervisor::{self, Options, Session};

/// One point of the matrix: the scenario as it runs there.
#[derive(Debug)]
pub struct Point {
    /// The swept values, `(axis, value)` in axis order; empty without a `[sweep]`.
    pub values: Vec<(String, String)>,
    /// The scenario with those values (and the overrides) applied.
    pub scenario: Scenario,
    session: Option<Session>,
}

impl Point {
    /// `size=64, wait=futex`; empty without a sweep.
    pub fn label(&self) -> String {
        let parts: Vec<String> = self
            .values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        parts.join(", ")
    }
}

/// How a command measures: which runs a sweep point gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `compare`: a warm-up run per backend (unless `warmup` is false), then rounds — each
    /// backend once per round, in the scenario's order — until `[run] repeat` rounds, or
    /// without it until at least [`MIN_ROUNDS`] rounds and `[run] min_time` measured per
    /// backend (at most [`MAX_ROUNDS`]).
    Measure {
        /// Whether a warm-up run per backend comes first (`--no-warmup` turns it off).
        warmup: bool,
    },
    /// `compare --quick`: no warm-up, one round unless `[run] repeat` says how many.
    Quick,
    /// `run`: `[run] repeat` runs (default one), no warm-up.
    Once,
}

/// The fewest measured rounds `compare` makes when `[run] repeat` is not given: with five,
/// a verdict is called only when every round agrees.
pub const MIN_ROUNDS: u32 = 5;

/// The most rounds `compare` adds to reach `[run] min_time` (a run far shorter than its
/// start-up would otherwise take thousands).
pub const MAX_ROUNDS: u32 = 50;

/// A sweep point's plan, from its scenario and the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// A warm-up run per backend first, kept out of every figure.
    pub warmup: bool,
    /// The measured rounds.
    pub rounds: Rounds,
}

/// How many measured rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounds {
    /// Exactly this many.
    Exactly(u32),
    /// Until at least `min` rounds and `min_time` measured per backend, at most `max`.
    Until {
        /// The fewest rounds.
        min: u32,
        /// The measured time per backend.
        min_time: std::time::Duration,
        /// The most rounds.
        max: u32,
    },
}

impl Plan {
    /// The plan of a point whose scenario is `sc`, measured as `mode` says.
    pub fn new(sc: &Scenario, mode: Mode) -> Plan {
        match mode {
            Mode::Quick | Mode::Once => Plan {
                warmup: false,
                rounds: Rounds::Exactly(sc.run.repeat.unwrap_or(1)),
            },
            Mode::Measure { warmup } => Plan {
                warmup,
                rounds: match sc.run.repeat {
                    Some(n) => Rounds::Exactly(n),
                    None => Rounds::Until {
                        min: MIN_ROUNDS,
                        min_time: sc.run.min_time,
                        max: MAX_ROUNDS,
                    },
                },
            },
        }
    }

    /// The plan in words: `a warm-up run per backend, then at least 5 rounds and 1 s measured
    /// per backend (at most 50 rounds)`.
    pub fn describe(&self) -> String {
        let rounds = match self.rounds {
            Rounds::Exactly(1) => "one round".to_string(),
            Rounds::Exactly(n) => format!("{n} rounds"),
            Rounds::Until { min, min_time, max } => format!(
                "at least {min} rounds and {} measured per backend (at most {max} rounds)",
                human_duration(min_time)
            ),
        };
        if self.warmup {
            format!("a warm-up run per backend, then {rounds}")
        } else {
            format!("{rounds}, no warm-up")
        }
    }

    /// Whether a point that has made `done` rounds, with `measured[b]` ns measured on backend
    /// `b` so far, is finished.
    fn finished(&self, done: u32, measured: &[u64]) -> bool {
        match self.rounds {
            Rounds::Exactly(n) => done >= n,
            Rounds::Until { min, min_time, max } => {
                let want = u64::try_from(min_time.as_nanos()).unwrap_or(u64::MAX);
                done >= max || (done >= min && measured.iter().all(|&m| m >= want))
            }
        }
    }

    /// How many rounds the point will make, as far as can be told: `done` made, `measured[b]`
    /// ns so far on backend `b`, and `typical[b]` one run's time there (0: not known yet).
    fn expected(&self, done: u32, measured: &[u64], typical: &[u64]) -> u32 {
        match self.rounds {
            Rounds::Exactly(n) => n,
            Rounds::Until { min, min_time, max } => {
                let want = u64::try_from(min_time.as_nanos()).unwrap_or(u64::MAX);
                let more = measured
                    .iter()
                    .zip(typical)
                    .map(|(&m, &t)| {
                        if m >= want {
                            0
                        } else if t == 0 {
                            min
                        } else {
                            u32::try_from((want - m).div_ceil(t)).unwrap_or(max)
                        }
                    })
                    .max()
                    .unwrap_or(0);
                (done + more).clamp(min, max)
            }
        }
    }
}

/// `1 s`, `300 ms`, `2.5 s`.
fn human_duration(d: std::time::Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

/// What [`Matrix::run_all`] tells its caller.
#[derive(Debug)]
pub enum Step<'a> {
    /// A run is about to start.
    Start {
        /// Where in the matrix.
        point: &'a Point,
        /// On which backend.
        backend: BackendKind,
        /// Which measured round (0-based); 0 for a warm-up run.
        round: u32,
        /// Whether this is the point's warm-up run on `backend`.
        warmup: bool,
        /// The runs the whole matrix will make, as far as can be told now (it grows or shrinks
        /// as measured times replace guesses).
        expected_runs: usize,
    },
    /// A run ended (failures are in the record).
    Done {
        /// Where in the matrix.
        point: &'a Point,
        /// Which measured round (0-based); 0 for a warm-up run.
        round: u32,
        /// Whether it was a warm-up run.
        warmup: bool,
        /// What the supervisor gathered.
        record: RunRecord,
    },
}

/// A scenario's runs, checked and ready to start.
#[derive(Debug)]
pub struct Matrix {
    points: Vec<Point>,
    backends: Vec<BackendKind>,
    opts: Options,
    mode: Mode,
}

impl Matrix {
    /// Builds `sc`'s stale plugins and checks it — and, with a `[sweep]`, every point of it,
    /// loaded from `sc.path` with the point's values and then `overrides` — on every one of
    /// `backends`. An error names the scenario, the key and why; nothing has started then.
    pub fn new(
        sc: &Scenario,
        backends: &[BackendKind],
        overrides: &[String],
        opts: Options,
        mode: Mode,
    ) -> anyhow::Result<Matrix> {
        crate::build::build_stale(sc)?;
        check::check_all(sc, backends).map_err(|e| anyhow::anyhow!("{e}"))?;
        let points = if sc.sweep.is_empty() {
            vec![Point {
                values: Vec::new(),
                scenario: sc.clone(),
                session: None,
            }]
        } else {
            let mut points = Vec::new();
            for (values, sets) in sc.sweep_points() {
                let mut all = sets;
                all.extend(overrides.iter().cloned());
                let scenario =
                    Scenario::load_with(&sc.path, &all).map_err(|e| anyhow::anyhow!("{e}"))?;
                check::check_all(&scenario, backends).map_err(|e| {
                    let at: Vec<String> =
                        values.iter().map(|(a, v)| format!("{a} = {v}")).collect();
                    anyhow::anyhow!("at sweep point {}: {e}", at.join(", "))
                })?;
                points.push(Point {
                    values,
                    scenario,
                    session: None,
                });
            }
            points
        };
        Ok(Matrix {
            points,
            backends: backends.to_vec(),
            opts,
            mode,
        })
    }

    /// The points, in sweep order (one without a sweep).
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// The plan of point `p`.
    pub fn plan(&self, p: usize) -> Plan {
        Plan::new(&self.points[p].scenario, self.mode)
    }

    /// How many runs [`Matrix::run_all`] makes at least: per point, the warm-up runs and the
    /// fewest rounds of its plan, on every backend.
    pub fn len(&self) -> usize {
        (0..self.points.len())
            .map(|p| self.expected_runs_at(p, &[], &[], 0))
            .sum()
    }

    /// Whether there is nothing to run (no backend).
    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    /// The runs point `p` will make, warm-ups included, given what its rounds measured so far.
    fn expected_runs_at(&self, p: usize, measured: &[u64], typical: &[u64], done: u32) -> usize {
        let plan = self.plan(p);
        let n = self.backends.len();
        let zeros = vec![0; n];
        let measured = if measured.is_empty() {
            &zeros
        } else {
            measured
        };
        let typical = if typical.is_empty() { &zeros } else { typical };
        n * (usize::from(plan.warmup) + plan.expected(done, measured, typical) as usize)
    }

    /// Runs point `p` once on `backend` as repeat `repeat`, making the point's session first
    /// if it has none. An `Err` is a session that could not be made (a module that does not
    /// compile, an agent that cannot be reached); a failed run is in the record.
    pub fn run_one(
        &mut self,
        p: usize,
        backend: BackendKind,
        repeat: u32,
    ) -> anyhow::Result<(&Point, RunRecord)> {
        let point = &mut self.points[p];
        if point.session.is_none() {
            point.session = Some(Session::new(&point.scenario, &self.opts)?);
        }
        let point = &self.points[p];
        let session = point.session.as_ref().expect("made above");
        let record = session.run(&point.scenario, backend, repeat);
        Ok((point, record))
    }

    /// Runs every point by its [`Plan`], point after point: the warm-up runs, then rounds of
    /// every backend in order; `each` hears of every run before it starts and when it ends.
    /// A point stops adding rounds after a round in which a run failed. Stops after the run in
    /// which Ctrl-C (or SIGTERM) arrived, or when `each` breaks.
    pub fn run_all(
        &mut self,
        each: &mut dyn FnMut(Step<'_>) -> ControlFlow<()>,
    ) -> anyhow::Result<()> {
        let backends = self.backends.clone();
        let n = backends.len();
        // Runs of the points already done, and the fewest the later points make.
        let mut before = 0;
        for p in 0..self.points.len() {
            let plan = self.plan(p);
            let after: usize = (p + 1..self.points.len())
                .map(|q| self.expected_runs_at(q, &[], &[], 0))
                .sum();
            let mut measured = vec![0u64; n];
            let mut typical = vec![0u64; n];
            let mut made = 0;
            let mut done = 0u32;
            let warmups = if plan.warmup { 1 } else { 0 };
            loop {
                let warmup = made < warmups * n;
                if !warmup && plan.finished(done, &measured) {
                    break;
                }
                let mut failed = false;
                for (b, &backend) in backends.iter().enumerate() {
                    let expected = before
                        + after
                        + if warmup {
                            self.expected_runs_at(p, &[], &[], 0)
                        } else {
                            self.expected_runs_at(p, &measured, &typical, done)
                        };
                    let round = if warmup { 0 } else { done };
                    if each(Step::Start {
                        point: &self.points[p],
                        backend,
                        round,
                        warmup,
                        expected_runs: expected,
                    })
                    .is_break()
                    {
                        return Ok(());
                    }
                    let (point, record) = self.run_one(p, backend, round)?;
                    let took = record.measured_ns();
                    failed |= record.failed();
                    made += 1;
                    if warmup {
                        typical[b] = took;
                    } else {
                        measured[b] += took;
                        typical[b] = measured[b] / u64::from(done + 1);
                    }
                    if each(Step::Done {
                        point,
                        round,
                        warmup,
                        record,
                    })
                    .is_break()
                        || supervisor::was_interrupted()
                    {
                        return Ok(());
                    }
                }
                if !warmup {
                    done += 1;
                }
                if failed {
                    break;
                }
            }
            before += made;
        }
        Ok(())
    }
}
