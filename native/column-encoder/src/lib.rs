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

mod decimal;
mod out;
mod packed;
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
    /// One column's values (as doubles and as bits) and scaled integers.
    nums: Vec<f64>,
    bits: Vec<u64>,
    scaled: Vec<i64>,
    out: Out,
}

impl Default for Out {
    fn default() -> Self {
        Out::new()
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
    state().out.buf.as_ptr()
}

#[no_mangle]
pub extern "C" fn tpd_encode(nc: u32) -> u32 {
    let e = state();
    match encode_block(e, nc as usize) {
        Some(len) => len as u32,
        None => BAD_INPUT,
    }
}

/// The kinds and bodies of the block's nc columns into e.out; its length.
fn encode_block(e: &mut Encoder, nc: usize) -> Option<usize> {
    let Encoder { vals, order, col_start, nums, bits, scaled, out } = e;
    if col_start.len() < nc + 1 {
        return None;
    }
    out.buf.clear();
    // Kind bytes first (layout 2), bodies after: at most 9 bytes a value (FLOAT64 is 8,
    // DECIMAL_K's varints 8) and a few bytes of head a column.
    out.buf.reserve(nc + 9 * vals.len() + 16 * nc);
    out.buf.resize(nc, 0);
    for c in 0..nc {
        let from = col_start[c] as usize;
        let to = col_start[c + 1] as usize;
        if to < from || to > order.len() {
            return None;
        }
        let n = to - from;
        nums.clear();
        bits.clear();
        for &i in &order[from..to] {
            let b = *vals.get(i as usize)?;
            bits.push(b);
            nums.push(f64::from_bits(b));
        }
        if scaled.len() < n {
            scaled.resize(n, 0);
        }
        out.buf[c] = encode_column(out, nums, bits, &mut scaled[..n]);
    }
    Some(out.buf.len())
}

/// encodeNums: the body of one column in the smallest exact kind; its kind byte.
fn encode_column(out: &mut Out, nums: &[f64], bits: &[u64], scaled: &mut [i64]) -> u8 {
    let n = nums.len();
    if let Some((dec, k)) = decimal::scale_decimal(nums, scaled, n) {
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
    if n > 0 {
        let xor_bytes = (xor::xor_column_bits(bits) + 7) / 8;
        if out::varint_bytes(xor_bytes) + xor_bytes < 8 * n as u64 {
            xor::encode_xor(out, bits, xor_bytes);
            return KIND_XOR;
        }
    }
    for &b in bits {
        out.buf.extend_from_slice(&b.to_le_bytes());
    }
    KIND_FLOAT64
}
