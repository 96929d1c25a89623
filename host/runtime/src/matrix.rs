//! The one run loop: a scenario's matrix of runs — sweep points × backends × repeats — as
//! `compare`, `run`, `compare --explain` and `bench` run it.
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

/// What [`Matrix::run_all`] tells its caller.
#[derive(Debug)]
pub enum Step<'a> {
    /// A run is about to start.
    Start {
        /// Where in the matrix.
        point: &'a Point,
        /// On which backend.
        backend: BackendKind,
        /// Which repeat (0-based).
        repeat: u32,
    },
    /// A run ended (failures are in the record).
    Done {
        /// Where in the matrix.
        point: &'a Point,
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
                check::check_all(&scenario, backends).map_err(|e| anyhow::anyhow!("{e}"))?;
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
        })
    }

    /// The points, in sweep order (one without a sweep).
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// How many runs [`Matrix::run_all`] makes: per point, every backend `[run] repeat` times.
    pub fn len(&self) -> usize {
        self.points
            .iter()
            .map(|p| self.backends.len() * p.scenario.run.repeat as usize)
            .sum()
    }

    /// Whether there is nothing to run (no backend).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    /// Runs every point on every backend, each `[run] repeat` times, in that order; `each`
    /// hears of every run before it starts and when it ends. Stops after the run in which
    /// Ctrl-C (or SIGTERM) arrived, or when `each` breaks.
    pub fn run_all(
        &mut self,
        each: &mut dyn FnMut(Step<'_>) -> ControlFlow<()>,
    ) -> anyhow::Result<()> {
        let backends = self.backends.clone();
        for p in 0..self.points.len() {
            for &backend in &backends {
                for repeat in 0..self.points[p].scenario.run.repeat {
                    let point = &self.points[p];
                    if each(Step::Start {
                        point,
                        backend,
                        repeat,
                    })
                    .is_break()
                    {
                        return Ok(());
                    }
                    let (point, record) = self.run_one(p, backend, repeat)?;
                    if each(Step::Done { point, record }).is_break()
                        || supervisor::was_interrupted()
                    {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }
}
