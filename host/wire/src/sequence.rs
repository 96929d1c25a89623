//! Loss, duplication and reordering, counted by the receiving host from the sequence numbers
//! the sending host puts on every message of a link ([`crate::frame`]'s `seq`): never as
//! sent − received, which cannot tell a lost message from one still in flight, nor a
//! duplicate from a delivery.
//!
//! A [`Ledger`] follows one link. A message whose number is ahead of the next one expected
//! makes the numbers in between *lost* (for now: they are remembered as gaps); one whose
//! number falls into a gap arrived late (*reordered*: it is no longer lost); one whose number
//! was delivered already is *duplicated*. The end-of-stream frame carries how many messages
//! the link was offered, so messages dropped after the last delivered one count as lost too.
//!
//! Numbers are 32 bits on the wire and wrap; the ledger extends them to 64 bits relative to
//! the next one expected (as TCP does), which holds while fewer than 2^31 messages of one link
//! are lost in a row or arrive that late.

use std::collections::VecDeque;

/// Gaps a ledger remembers: a message that arrives later than this many gaps behind the
/// newest is counted as a duplicate (and stays lost), which bounds a ledger's memory at
/// 64 KiB whatever a lossy link does.
pub const MAX_GAPS: usize = 4096;

/// What one link's receiving end has seen of its sequence numbers.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// The number expected next (the highest seen + 1), extended to 64 bits.
    next: u64,
    /// Missing numbers, as half-open ranges in ascending order.
    gaps: VecDeque<(u64, u64)>,
    /// Messages missing: skipped over and not (yet) arrived late.
    pub lost: u64,
    /// Messages whose number had been delivered before.
    pub duplicated: u64,
    /// Messages that arrived after a later one (they filled a gap).
    pub reordered: u64,
}

impl Ledger {
    /// A message numbered `seq` was delivered.
    pub fn deliver(&mut self, seq: u32) {
        let step = self.step_to(seq);
        if let Ok(ahead) = u64::try_from(step) {
            let at = self.next + ahead;
            self.skip_to(at);
            self.next = at + 1;
            return;
        }
        let back = step.unsigned_abs();
        let Some(at) = self.next.checked_sub(back) else {
            self.duplicated += 1;
            return;
        };
        match self.gaps.iter().position(|&(a, b)| a <= at && at < b) {
            Some(i) => {
                self.reordered += 1;
                self.lost -= 1;
                let (a, b) = self.gaps[i];
                match (a == at, at + 1 == b) {
                    (true, true) => {
                        self.gaps.remove(i);
                    }
                    (true, false) => self.gaps[i].0 = at + 1,
                    (false, true) => self.gaps[i].1 = at,
                    (false, false) => {
                        self.gaps[i].1 = at;
                        self.gaps.insert(i + 1, (at + 1, b));
                        self.trim();
                    }
                }
            }
            None => self.duplicated += 1,
        }
    }

    /// The link ended: its producer said it offered `count` messages. Those after the last
    /// delivered are lost.
    pub fn end(&mut self, count: u32) {
        if let Ok(ahead @ 1..) = u64::try_from(self.step_to(count)) {
            let at = self.next + ahead;
            self.skip_to(at);
            self.next = at;
        }
    }

    /// Distance from the number expected to the 32-bit number `seq`, as a signed step:
    /// the wire's numbers wrap, so the shorter way round is taken.
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    fn step_to(&self, seq: u32) -> i64 {
        // Truncating `next` to its low 32 bits and reading the difference as signed is the
        // point: that is serial-number arithmetic (RFC 1982).
        i64::from(seq.wrapping_sub(self.next as u32) as i32)
    }

    /// Numbers from `next` up to `at` (exclusive) were skipped: lost, for now.
    fn skip_to(&mut self, at: u64) {
        if at > self.next {
            self.lost += at - self.next;
            self.gaps.push_back((self.next, at));
            self.trim();
        }
    }

    fn trim(&mut self) {
        while self.gaps.len() > MAX_GAPS {
            self.gaps.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(seqs: &[u32]) -> Ledger {
        let mut l = Ledger::default();
        for &s in seqs {
            l.deliver(s);
        }
        l
    }

    fn counts(l: &Ledger) -> (u64, u64, u64) {
        (l.lost, l.duplicated, l.reordered)
    }

    #[test]
    fn in_order_is_clean() {
        let mut l = ledger(&[0, 1, 2, 3]);
        l.end(4);
        assert_eq!(counts(&l), (0, 0, 0));
    }

    #[test]
    fn gaps_are_lost_and_the_end_counts_the_tail() {
        let mut l = ledger(&[0, 3, 4, 9]);
        assert_eq!(counts(&l), (6, 0, 0));
        l.end(12);
        assert_eq!(counts(&l), (8, 0, 0));
        // Everything lost: only the end says so.
        let mut l = Ledger::default();
        l.end(5);
        assert_eq!(counts(&l), (5, 0, 0));
    }

    #[test]
    fn late_arrivals_fill_gaps_and_repeats_are_duplicates() {
        let mut l = ledger(&[0, 4, 2, 1, 3, 3, 0, 5]);
        l.end(6);
        assert_eq!(counts(&l), (0, 2, 3));
        // A late one in the middle of a gap splits it; the rest stays lost.
        let mut l = ledger(&[0, 10, 5]);
        l.end(11);
        assert_eq!(counts(&l), (8, 0, 1));
        l.deliver(5);
        assert_eq!(counts(&l), (8, 1, 1));
    }

    #[test]
    fn numbers_wrap() {
        let start = u32::MAX - 2;
        let mut l = Ledger {
            next: u64::from(start),
            ..Ledger::default()
        };
        for s in [start, start + 1, start + 2, 0, 2, 1] {
            l.deliver(s);
        }
        // Six messages offered from `start`: the count wraps as the numbers do.
        l.end(start.wrapping_add(6));
        assert_eq!(counts(&l), (0, 0, 1));
    }

    #[test]
    fn gaps_are_bounded() {
        let mut l = Ledger::default();
        for k in 0..u32::try_from(MAX_GAPS + 10).unwrap() {
            l.deliver(2 * k);
        }
        assert_eq!(l.gaps.len(), MAX_GAPS);
        assert_eq!(l.lost, MAX_GAPS as u64 + 9);
        // The oldest gaps are forgotten: number 1 arriving now counts as a duplicate.
        l.deliver(1);
        assert_eq!(counts(&l), (MAX_GAPS as u64 + 9, 1, 0));
    }
}
