//! The whole DELTA/IMAGE payload of an all-number block (payload-encode.ts encodeBatches,
//! layout 2): head, timestamps, column table, batch lists, then the columns (lib.rs). The
//! column numbering and grouping are payload-encode.ts assignColumns / groupByColumn.

use super::out::Out;

/// Largest |timestamp| taken (µs; 2^52 is year 2112): their differences stay exact in
/// doubles, as the JS encoder computes them.
const TS_ABS_MAX: f64 = 4503599627370496.0; // 2^52
/// Largest |second difference| of timestamps taken: the JS encoder's svar is exact to 2^52.
const TS_DD_ABS_MAX: i64 = 1 << 52;

/// Path ids from this on are refused (the column map is an array indexed by them).
const PATH_ID_LIMIT: u32 = 1 << 28;

/// The block's inputs and scratch (payload-encode.ts' typed scratch).
#[derive(Default)]
pub struct Batches {
    pub ts: Vec<f64>,
    pub counts: Vec<u32>,
    pub ids: Vec<u32>,
    /// Global path id -> block-local column (-1: none), all -1 between blocks.
    local_of: Vec<i32>,
    local: Vec<u32>,
    pub col_global: Vec<u32>,
    pub col_count: Vec<u32>,
}

impl Batches {
    pub fn reserve(&mut self, nb: usize, nu: usize) {
        self.ts.resize(nb, 0.0);
        self.counts.resize(nb, 0);
        self.ids.resize(nu, 0);
        self.local.resize(nu, 0);
    }

    /// reserve without the ids (PayloadEncoder reads them where they are).
    pub fn reserve_times(&mut self, nb: usize, nu: usize) {
        self.ts.resize(nb, 0.0);
        self.counts.resize(nb, 0);
        self.local.resize(nu, 0);
    }

    /// assignColumns + forgetColumns: columns by first appearance; returns nc.
    fn assign_columns(&mut self, ids: &[u32]) -> usize {
        let Batches { local_of, local, col_global, col_count, .. } = self;
        col_global.clear();
        col_count.clear();
        for (i, &g) in ids.iter().enumerate() {
            let g = g as usize;
            if g >= local_of.len() {
                local_of.resize((g + 1).max(2 * local_of.len()), -1);
            }
            let mut l = local_of[g];
            if l < 0 {
                l = col_global.len() as i32;
                local_of[g] = l;
                col_global.push(g as u32);
                col_count.push(0);
            }
            local[i] = l as u32;
            col_count[l as usize] += 1;
        }
        for &g in col_global.iter() {
            local_of[g as usize] = -1;
        }
        col_global.len()
    }

    /// The timestamps as the JS encoder reads them (integers within TS_ABS_MAX), or None.
    fn times_ok(&self) -> bool {
        self.ts.iter().all(|&t| t.floor() == t && t.abs() <= TS_ABS_MAX)
    }
}

/// Head, times, column table and batch lists into `out`; the grouped update indices into
/// `order` and the column starts into `col_start`. Returns nc, or None when the inputs are
/// not a block (counts not adding up to the updates, timestamps not integers in range).
pub fn encode_head(b: &mut Batches, ids: &[u32], out: &mut Out, order: &mut Vec<u32>, col_start: &mut Vec<u32>) -> Option<usize> {
    let nb = b.ts.len();
    let nu = ids.len();
    if b.counts.iter().map(|&n| n as u64).sum::<u64>() != nu as u64 || !b.times_ok() || ids.iter().any(|&g| g >= PATH_ID_LIMIT) || b.local.len() < nu {
        return None;
    }
    let nc = b.assign_columns(ids);
    out.u8(0); // PAYLOAD_LAYOUT2_MARK
    out.u8(2); // PAYLOAD_LAYOUT
    out.uvar(nb as u64);
    out.uvar(nu as u64);
    out.uvar(nc as u64);
    let mut prev_ts = if nb > 0 { b.ts[0] as i64 } else { 0 };
    let mut prev_delta = 0i64;
    for &t in &b.ts {
        let t = t as i64;
        let d = t - prev_ts;
        if (d - prev_delta).abs() > TS_DD_ABS_MAX {
            return None;
        }
        out.svar(d - prev_delta);
        prev_delta = d;
        prev_ts = t;
    }
    let mut prev_g = 0i64;
    for &g in &b.col_global {
        out.svar(g as i64 - prev_g);
        prev_g = g as i64;
    }
    write_batch_lists(b, out);
    // columnStarts + groupByColumn.
    col_start.resize(nc + 1, 0);
    let mut at = 0u32;
    for c in 0..nc {
        col_start[c] = at;
        let n = b.col_count[c];
        b.col_count[c] = at;
        at += n;
    }
    col_start[nc] = at;
    order.resize(nu, 0);
    for (i, &l) in b.local.iter().enumerate() {
        let f = &mut b.col_count[l as usize];
        order[*f as usize] = i as u32;
        *f += 1;
    }
    Some(nc)
}

/// writeBatchLists: each batch's columns as deltas, or "the same as the previous batch".
fn write_batch_lists(b: &Batches, out: &mut Out) {
    let local = &b.local;
    let mut start = 0usize;
    let mut prev: Option<(usize, usize)> = None; // (start, count) of the previous batch
    for &n in &b.counts {
        let n = n as usize;
        let same = matches!(prev, Some((ps, pn)) if pn == n && local[start..start + n] == local[ps..ps + n]);
        out.uvar(2 * n as u64 + same as u64);
        if !same {
            let mut prev_l = -1i64;
            for &l in &local[start..start + n] {
                out.svar(l as i64 - prev_l);
                prev_l = l as i64;
            }
        }
        prev = Some((start, n));
        start += n;
    }
}

/// What the head and batch lists can write at most (varints of 8 bytes with their slack).
pub fn head_bound(nb: usize, nu: usize, nc: usize) -> usize {
    2 + 3 * 8 + 16 * nb + 8 * nc + 8 * nu + 8
}
