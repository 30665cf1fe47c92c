//! Liveness-based memory planning: one arena, intermediate buffers packed by first fit.
//!
//! Every value a kernel writes gets a byte range of one arena. A value is live from the step
//! that writes it to the last step that reads it (graph outputs stay live to the end), and
//! ranges of values whose lifetimes do not overlap may share bytes. Steps write their outputs
//! before their inputs die, so a kernel never reads and writes the same bytes. Peak arena size
//! against the sum of all intermediates is the saving reported by [`Plan`].

/// Alignment of every buffer in the arena (a cache line).
pub const ALIGN: usize = 64;

/// Where each planned value lives and how big the arena is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Byte offset of each planned value (indexed like the request list).
    pub offsets: Vec<usize>,
    /// Arena size in bytes.
    pub peak_bytes: usize,
    /// Sum of all planned values' sizes: what one buffer per value would take.
    pub total_bytes: usize,
}

/// A value to place: its size and its live range `[first, last]` in step numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Bytes.
    pub bytes: usize,
    /// Step that writes it.
    pub first: usize,
    /// Last step that reads it (or `usize::MAX` to stay live to the end).
    pub last: usize,
}

fn round_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Places the requests: in step order, each value takes the lowest offset whose range does not
/// overlap any value live at the same time (first fit over the current live set).
pub fn plan(reqs: &[Request]) -> Plan {
    let mut order: Vec<usize> = (0..reqs.len()).collect();
    order.sort_by_key(|&i| (reqs[i].first, std::cmp::Reverse(reqs[i].bytes)));
    let mut offsets = vec![0usize; reqs.len()];
    let mut placed: Vec<usize> = Vec::new();
    let mut peak = 0usize;
    for &i in &order {
        let r = reqs[i];
        let size = round_up(r.bytes.max(1));
        // Ranges of placed values whose lifetimes overlap this one's.
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&j| reqs[j].last >= r.first && reqs[j].first <= r.last)
            .map(|&j| (offsets[j], offsets[j] + round_up(reqs[j].bytes.max(1))))
            .collect();
        busy.sort_unstable();
        let mut at = 0usize;
        for (lo, hi) in busy {
            if at + size <= lo {
                break;
            }
            at = at.max(hi);
        }
        offsets[i] = at;
        peak = peak.max(at + size);
        placed.push(i);
    }
    Plan {
        offsets,
        peak_bytes: peak,
        total_bytes: reqs.iter().map(|r| round_up(r.bytes.max(1))).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disjoint_lifetimes_share_bytes() {
        let r = |bytes, first, last| Request { bytes, first, last };
        // A chain a -> b -> c -> d: a dies when c is written, so c reuses a's bytes.
        let p = plan(&[
            r(256, 0, 1),
            r(256, 1, 2),
            r(256, 2, 3),
            r(256, 3, usize::MAX),
        ]);
        assert_eq!(p.total_bytes, 1024);
        assert_eq!(p.peak_bytes, 512);
        assert_eq!(p.offsets[0], p.offsets[2]);
        assert_ne!(p.offsets[1], p.offsets[2]);
    }

    #[test]
    fn live_values_never_overlap() {
        let reqs: Vec<Request> = (0..20)
            .map(|i| Request {
                bytes: 100 + 37 * (i % 5),
                first: i,
                last: i + 1 + i % 4,
            })
            .collect();
        let p = plan(&reqs);
        for i in 0..reqs.len() {
            for j in 0..i {
                let (a, b) = (reqs[i], reqs[j]);
                if a.first <= b.last && b.first <= a.last {
                    let (ai, bi) = (p.offsets[i], p.offsets[j]);
                    assert!(
                        ai + a.bytes <= bi || bi + b.bytes <= ai,
                        "{i} and {j} overlap"
                    );
                }
            }
        }
        assert!(p.peak_bytes <= p.total_bytes);
    }
}
