//! Prototype: the number-column encoder of storage/codec/columns.ts (encodeNumberColumns)
//! for WebAssembly, byte-identical to it. Not used by the storage path; docs/wasm-encoder.md.
//!
//! Memory protocol (one block at a time, one caller: a module instance is single-threaded):
//! 1. `tpd_reserve(nu, nc)` sizes the input areas for nu updates and nc columns (it may grow
//!    the memory: views made before it are stale);
//! 2. the caller writes the block's values as float64 bit patterns at `tpd_vals_ptr()`
//!    (nu x 8 bytes), the update indices grouped by column at `tpd_order_ptr()` (nu x u32)
//!    and the columns' starts at `tpd_col_start_ptr()` (nc + 1 x u32), little-endian;
//! 3. `tpd_encode(nc)` writes nc kind bytes then the bodies at `tpd_out_ptr()` and returns
//!    their length (0xffff_ffff when the inputs are inconsistent: a start past nu or going
//!    back, an index past nu).

mod batches;
mod decimal;
mod few;
mod out;
mod packed;
#[cfg(test)]
mod test_rng;
mod xor;

use core::cell::UnsafeCell;
use out::Out;

const KIND_FLOAT64: u8 = 2;
const KIND_XOR: u8 = 3;
const KIND_DECIMAL_K: u8 = 0x10;
const KIND_PACKED: u8 = 0x40;
/// tpd_encode's answer for inputs that do not describe a block.
const BAD_INPUT: u32 = u32::MAX;

#[derive(Default)]
struct Encoder {
    vals: Vec<u64>,
    order: Vec<u32>,
    col_start: Vec<u32>,
    /// One column's values (bit patterns) and scaled integers.
    bits: Vec<u64>,
    scaled: Vec<i64>,
    guess: decimal::Guess,
    out: Out,
    batches: batches::Batches,
}

impl Default for Out {
    fn default() -> Self {
        Out::new()
    }
}

impl Default for decimal::Guess {
    fn default() -> Self {
        decimal::Guess { k: 0 }
    }
}

struct Global(UnsafeCell<Option<Encoder>>);
// SAFETY: wasm32-unknown-unknown without threads: one caller at a time.
unsafe impl Sync for Global {}
static STATE: Global = Global(UnsafeCell::new(None));

fn state() -> &'static mut Encoder {
    // SAFETY: single-threaded, and no export holds the reference across calls.
    unsafe { (*STATE.0.get()).get_or_insert_with(Encoder::default) }
}

/// Updates of the largest block whose scratch PayloadEncoder keeps between blocks (4 times
/// storage/limits.ts blockUpdatesTarget, 32 768): about 10 MB.
pub const SCRATCH_KEEP_UPDATES: usize = 8 * 16_384;

/// The most updates a block given to PayloadEncoder may hold (storage/codec/payload-head.ts
/// PAYLOAD_UNDER_A_BIT_UPDATES_MAX; the builder's blocks hold at most 1 032 768: blockUpdatesTarget plus one batch of batchUpdatesMax): its
/// scratch stays under about 130 MB.
pub const PAYLOAD_UPDATES_MAX: usize = 1 << 21;

/// The encoder as a library (the Node addon of native/tapedeck-node): one per thread, its
/// buffers reused from block to block.
#[derive(Default)]
pub struct PayloadEncoder(Encoder);

impl PayloadEncoder {
    pub fn new() -> Self {
        PayloadEncoder::default()
    }

    /// The layout-2 DELTA/IMAGE payload of an all-number block, byte for byte what
    /// payload-encode.ts encodeBatches writes (tpd_encode_batches), or None when the inputs
    /// are not a block it takes (see batches.rs): the caller then uses the TypeScript encoder.
    /// `vals` are the values' float64 bit patterns.
    pub fn encode(&mut self, ts: &[f64], counts: &[u32], ids: &[u32], vals: &[u64]) -> Option<&[u8]> {
        // Scratch grown by a block far past the usual size (a batch of up to a million updates
        // fills a block of its own) is given back before the next, usual block: about 80
        // bytes an update would otherwise stay held for the process' life.
        // Inputs that are not a block are refused before anything is copied or sized (an
        // allocation that fails aborts the process, where a refusal is what the caller expects).
        if ids.len() != vals.len() || counts.len() != ts.len() || ids.len() > PAYLOAD_UPDATES_MAX || counts.iter().map(|&n| n as u64).sum::<u64>() != ids.len() as u64 {
            return None;
        }
        if self.0.bits.capacity() > SCRATCH_KEEP_UPDATES && ids.len() <= SCRATCH_KEEP_UPDATES {
            self.0 = Encoder::default();
        }
        let e = &mut self.0;
        e.batches.reserve_times(ts.len(), ids.len());
        e.batches.ts.copy_from_slice(ts);
        e.batches.counts.copy_from_slice(counts);
        // The ids and values are read where they are (the caller's typed arrays), not copied.
        let len = encode_batches(e, ids, vals)?;
        Some(e.out.bytes(len))
    }

    /// After `encode`: each path's last value in the block (its column's last update: the
    /// grouping is stable) into `nums[id]` (bit patterns), and `kinds[id] = 1`. False, and
    /// nothing written, when a path id is past either array.
    pub fn latest_into(&self, vals: &[u64], nums: &mut [u64], kinds: &mut [u8]) -> bool {
        let e = &self.0;
        let cols = &e.batches.col_global;
        let limit = nums.len().min(kinds.len());
        if cols.iter().any(|&g| g as usize >= limit) || e.col_start.len() < cols.len() + 1 {
            return false;
        }
        for (c, &g) in cols.iter().enumerate() {
            let last = e.col_start[c + 1] as usize - 1;
            nums[g as usize] = vals[e.order[last] as usize];
            kinds[g as usize] = 1;
        }
        true
    }
}

#[no_mangle]
pub extern "C" fn tpd_reserve(nu: u32, nc: u32) {
    let e = state();
    e.vals.resize(nu as usize, 0);
    e.order.resize(nu as usize, 0);
    e.col_start.resize(nc as usize + 1, 0);
}

#[no_mangle]
pub extern "C" fn tpd_vals_ptr() -> *mut u64 {
    state().vals.as_mut_ptr()
}

#[no_mangle]
pub extern "C" fn tpd_order_ptr() -> *mut u32 {
    state().order.as_mut_ptr()
}

#[no_mangle]
pub extern "C" fn tpd_col_start_ptr() -> *mut u32 {
    state().col_start.as_mut_ptr()
}

#[no_mangle]
pub extern "C" fn tpd_out_ptr() -> *const u8 {
    state().out.ptr()
}

/// A whole payload (encodeBatches): `tpd_reserve_batches(nb, nu)`, then the timestamps
/// (f64) at `tpd_ts_ptr()`, the batches' update counts (u32) at `tpd_counts_ptr()`, the
/// global path ids (u32) at `tpd_ids_ptr()` and the values at `tpd_vals_ptr()`;
/// `tpd_encode_batches()` writes the payload at `tpd_out_ptr()` and returns its length
/// (0xffff_ffff when the inputs are not a block).
#[no_mangle]
pub extern "C" fn tpd_reserve_batches(nb: u32, nu: u32) {
    let e = state();
    e.batches.reserve(nb as usize, nu as usize);
    e.vals.resize(nu as usize, 0);
}

#[no_mangle]
pub extern "C" fn tpd_ts_ptr() -> *mut f64 {
    state().batches.ts.as_mut_ptr()
}

#[no_mangle]
pub extern "C" fn tpd_counts_ptr() -> *mut u32 {
    state().batches.counts.as_mut_ptr()
}

#[no_mangle]
pub extern "C" fn tpd_ids_ptr() -> *mut u32 {
    state().batches.ids.as_mut_ptr()
}

#[no_mangle]
pub extern "C" fn tpd_encode_batches() -> u32 {
    let e = state();
    let (ids, vals) = (std::mem::take(&mut e.batches.ids), std::mem::take(&mut e.vals));
    let r = if ids.len() == vals.len() { encode_batches(e, &ids, &vals) } else { None };
    (e.batches.ids, e.vals) = (ids, vals);
    match r {
        Some(len) => len as u32,
        None => BAD_INPUT,
    }
}

/// The whole payload of e's batch times and counts, and `ids` and `vals` (one per update),
/// into e.out; its length, or None (not a block).
fn encode_batches(e: &mut Encoder, ids: &[u32], vals: &[u64]) -> Option<usize> {
    let nb = e.batches.ts.len();
    let nu = ids.len();
    if vals.len() != nu {
        return None;
    }
    // The column count is at most nu: bound the output by it before numbering columns.
    e.out.reserve(batches::head_bound(nb, nu, nu) + block_bound(nu, nu));
    let nc = batches::encode_head(&mut e.batches, ids, &mut e.out, &mut e.order, &mut e.col_start)?;
    encode_columns(e, vals, nc)
}

#[no_mangle]
pub extern "C" fn tpd_encode(nc: u32) -> u32 {
    let e = state();
    match encode_block(e, nc as usize) {
        Some(len) => len as u32,
        None => BAD_INPUT,
    }
}

/// What a block can write at most: its kind bytes, then per column of n values 12 n + 32
/// (FLOAT64 and XOR take at most 8 n + 5, DECIMAL_K 8 n, PACKED a head of 17 bytes, 4 n
/// packed, and at most 5 + 7 n for exceptions), and 8 bytes of slack for Out::uvar.
fn block_bound(nu: usize, nc: usize) -> usize {
    nc + 12 * nu + 32 * nc + 8
}

/// The kinds and bodies of the block's nc columns into e.out; its length.
fn encode_block(e: &mut Encoder, nc: usize) -> Option<usize> {
    if e.col_start.len() < nc + 1 {
        return None;
    }
    let nu = e.vals.len();
    // Every index and start checked once, so that the loops below index without checks.
    let order = &e.order;
    let col_start = &e.col_start;
    if order.iter().any(|&i| i as usize >= nu) || col_start[..=nc].windows(2).any(|w| w[1] < w[0]) || col_start[nc] as usize > order.len() {
        return None;
    }
    e.out.reserve(block_bound(nu, nc));
    let vals = std::mem::take(&mut e.vals);
    let r = encode_columns(e, &vals, nc);
    e.vals = vals;
    r
}

/// The kind bytes (at the output's position) and bodies of the nc columns of e's inputs
/// (checked); the output's length.
fn encode_columns(e: &mut Encoder, vals: &[u64], nc: usize) -> Option<usize> {
    let Encoder { order, col_start, bits, scaled, guess, out, .. } = e;
    let nu = vals.len();
    if bits.len() < nu {
        bits.resize(nu, 0);
        scaled.resize(nu, 0);
    }
    let kinds_at = out.pos;
    out.pos += nc; // kind bytes first (layout 2), bodies after
    for c in 0..nc {
        let from = col_start[c] as usize;
        let to = col_start[c + 1] as usize;
        let n = to - from;
        if n <= 2 && n >= 1 {
            // SAFETY: every index was checked against nu above.
            let v0 = f64::from_bits(unsafe { *vals.get_unchecked(order[from] as usize) });
            let v1 = if n == 2 { Some(f64::from_bits(unsafe { *vals.get_unchecked(order[from + 1] as usize) })) } else { None };
            if let Some((k, s0, s1)) = decimal::scale_short(v0, v1, guess) {
                out.svar(s0);
                if n == 2 {
                    out.svar(s1 - s0);
                }
                out.set(kinds_at + c, KIND_DECIMAL_K + k as u8);
                continue;
            }
        }
        if (few::FEW_MIN..=few::FEW_MAX).contains(&n) {
            if let Some(kind) = few::encode_few(out, vals, &order[from..to], guess) {
                out.set(kinds_at + c, kind);
                continue;
            }
        }
        let col = &mut bits[..n];
        for (b, &i) in col.iter_mut().zip(&order[from..to]) {
            // SAFETY: every index was checked against nu above.
            *b = unsafe { *vals.get_unchecked(i as usize) };
        }
        let kind = encode_column(out, col, &mut scaled[..n], guess);
        out.set(kinds_at + c, kind);
    }
    Some(out.pos)
}

/// encodeNums: the body of one column in the smallest exact kind; its kind byte.
fn encode_column(out: &mut Out, bits: &[u64], scaled: &mut [i64], guess: &mut decimal::Guess) -> u8 {
    let n = bits.len();
    if let Some((dec, k)) = decimal::scale_decimal(bits, scaled, guess) {
        if n >= 3 {
            let plan = packed::plan_packed(scaled);
            if plan.bytes < dec {
                packed::encode_packed(out, scaled, &plan);
                return KIND_PACKED + 16 * plan.order as u8 + k as u8;
            }
        }
        let mut prev = 0i64;
        for &s in scaled.iter() {
            out.svar(s - prev);
            prev = s;
        }
        return KIND_DECIMAL_K + k as u8;
    }
    let xor_bytes = xor::xor_column_bits(bits).div_ceil(8);
    if out::varint_bytes(xor_bytes) + xor_bytes < 8 * n as u64 {
        xor::encode_xor(out, bits, xor_bytes);
        return KIND_XOR;
    }
    for &b in bits {
        out.f64_bits(b);
    }
    KIND_FLOAT64
}
