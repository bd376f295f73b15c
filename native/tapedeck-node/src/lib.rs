//! Tapedeck's Node addon (N-API, napi-rs): the payload encoder of all-number blocks of
//! native/column-encoder, which writes byte for byte what storage/codec/payload-encode.ts
//! encodeBatches writes. storage/codec/native-payload.ts is its only caller; docs/native.md.

use std::cell::RefCell;

use column_encoder::PayloadEncoder;
use napi::bindgen_prelude::{Float64Array, Int32Array, Uint32Array, Uint8Array};
use napi_derive::napi;

thread_local! {
    /// One encoder per thread (the main thread and each worker that loads the addon): its
    /// buffers are reused from block to block.
    static ENCODER: RefCell<PayloadEncoder> = RefCell::new(PayloadEncoder::new());
}

/// The answer when the inputs are not a block the encoder takes (the caller then uses the
/// TypeScript encoder).
const REFUSED: i64 = -1;

/// Encodes a block of `counts.len()` batches stamped `ts` whose updates are path `ids[i]`
/// and number `vals[i]` into `out`. Returns the payload's length; REFUSED; or, when `out`
/// is too small, minus the length it needs (below -1) and writes nothing. With
/// `latest_nums` and `latest_kinds` (the block builder's latest value of every path), also
/// sets each path's last value in the block there (kind 1: a number); a path id past
/// either array refuses the block (nothing is written to them).
#[napi(js_name = "encodeNumberPayload", catch_unwind)]
pub fn encode_number_payload(
    ts: Float64Array,
    counts: Uint32Array,
    ids: Int32Array,
    vals: Float64Array,
    mut out: Uint8Array,
    latest_nums: Option<Float64Array>,
    latest_kinds: Option<Uint8Array>,
) -> i64 {
    let ids: &[i32] = &ids;
    // SAFETY: i32 and u32 have one size and alignment; a negative id reads as >= 2^31, which
    // the encoder refuses (its path id limit is 2^28).
    let ids: &[u32] = unsafe { std::slice::from_raw_parts(ids.as_ptr() as *const u32, ids.len()) };
    let vals: &[f64] = &vals;
    // SAFETY: f64 and u64 have one size and alignment; the bit patterns are read as they are
    // (NaN payloads kept).
    let vals: &[u64] = unsafe { std::slice::from_raw_parts(vals.as_ptr() as *const u64, vals.len()) };
    ENCODER.with(|cell| {
        let mut enc = cell.borrow_mut();
        let Some(payload) = enc.encode(&ts, &counts, ids, vals) else {
            return REFUSED;
        };
        let len = payload.len();
        let dest: &mut [u8] = &mut out;
        if len > dest.len() {
            return -(len as i64) - 1;
        }
        dest[..len].copy_from_slice(payload);
        if let (Some(mut nums), Some(mut kinds)) = (latest_nums, latest_kinds) {
            let nums: &mut [f64] = &mut nums;
            // SAFETY: as vals above; bit patterns written as they are.
            let nums: &mut [u64] = unsafe { std::slice::from_raw_parts_mut(nums.as_mut_ptr() as *mut u64, nums.len()) };
            if !enc.latest_into(nums, &mut kinds) {
                return REFUSED;
            }
        }
        len as i64
    })
}
