//! Tapedeck's Node addon (N-API, napi-rs): the payload encoder of all-number blocks of
//! native/column-encoder, which writes byte for byte what storage/codec/payload-encode.ts
//! encodeBatches writes. storage/codec/native-payload.ts is its only caller; docs/native.md.

use std::cell::RefCell;

use column_encoder::PayloadEncoder;
use napi::bindgen_prelude::{Buffer, Float64Array, Int32Array, Uint32Array, Uint8Array};
use napi_derive::napi;

thread_local! {
    /// One encoder per thread (the main thread and each worker that loads the addon): its
    /// buffers are reused from block to block.
    static ENCODER: RefCell<PayloadEncoder> = RefCell::new(PayloadEncoder::new());
}

/// What this build encodes: storage/codec/native-payload.ts NATIVE_ENCODER_VERSION must be
/// the same (raised with every change to the bytes or to these functions), so that a stale
/// build on disk is never used.
#[napi(js_name = "encoderVersion")]
pub fn encoder_version() -> u32 {
    2
}

/// CRC32C (Castagnoli) of `data` continuing from `seed`, the CRC of the bytes before it (0
/// to start): what @node-rs/crc32's crc32c(data, seed) answers, which storage/codec/crc.ts
/// uses until a probe of this build has checked this one (storage/native-codec-file.ts).
/// crc-fast folds by carry-less multiplication (VPCLMULQDQ where the CPU has it): about 15
/// times the three-way SSE 4.2 of the crc32c crate on a 46 KB frame here (docs/native.md).
/// `data` is borrowed for the call only (a slice: no reference to the array is created,
/// which a typed-array argument would make and leave to the collector).
#[napi(js_name = "crc32c")]
pub fn crc32c_of(data: &[u8], seed: u32) -> u32 {
    crc32c_append(seed, data)
}

/// The CRC32C of the bytes whose CRC is `seed` followed by `data`.
fn crc32c_append(seed: u32, data: &[u8]) -> u32 {
    // The register before the final xor is the CRC's complement (CRC-32/ISCSI: init and
    // xorout all ones).
    let mut d = crc_fast::Digest::new_with_init_state(crc_fast::CrcAlgorithm::Crc32Iscsi, u64::from(!seed));
    d.update(data);
    d.finalize() as u32
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
    let (ids, vals) = (unsigned(&ids), bits(&vals));
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
        if !latest_into(&enc, vals, latest_nums, latest_kinds) {
            return REFUSED;
        }
        len as i64
    })
}

/// frame.ts: the frame header's size, its magic ("TBLK" as a little-endian u32), the DELTA
/// block type and the LZ4 codec byte.
const FRAME_HEADER_BYTES: usize = 48;
const FRAME_MAGIC: u32 = 0x4b4c_4254;
const BLOCK_DELTA: u8 = 2;
const CODEC_NONE: u8 = 0;
const CODEC_LZ4: u8 = 1;
/// frame.ts: BLOCK_PAYLOAD_BYTES_MAX, COMPRESS_MIN_BYTES, COMPRESS_SAVING_SHIFT.
const BLOCK_PAYLOAD_BYTES_MAX: usize = 64 * 1024 * 1024;
const COMPRESS_MIN_BYTES: usize = 128;
const COMPRESS_SAVING_SHIFT: usize = 4;

/// A whole DELTA frame (frame.ts encodeFrame of the payload encodeNumberPayload writes): the
/// 48-byte header, then the payload stored LZ4-compressed (lz4-napi's block format: the raw
/// size in 4 bytes, then the block) when that saves at least 1/16 of it, else raw; CRC32C
/// over the header's first 40 bytes and the stored payload. With `latest_*`, the latest
/// values as encodeNumberPayload sets them. Null when the block is refused (nothing written
/// to `latest_*`): the caller then encodes it in TypeScript.
#[napi(js_name = "encodeNumberFrame", catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn encode_number_frame(
    ts: Float64Array,
    counts: Uint32Array,
    ids: Int32Array,
    vals: Float64Array,
    first_ts: f64,
    last_ts: f64,
    latest_nums: Option<Float64Array>,
    latest_kinds: Option<Uint8Array>,
) -> Option<Buffer> {
    let nb = counts.len();
    let nu = ids.len();
    if !(times_exact(first_ts) && times_exact(last_ts)) || nb > u32::MAX as usize || nu > u32::MAX as usize {
        return None;
    }
    let (ids, vals) = (unsigned(&ids), bits(&vals));
    ENCODER.with(|cell| {
        let mut enc = cell.borrow_mut();
        let raw = enc.encode(&ts, &counts, ids, vals)?;
        if raw.len() > BLOCK_PAYLOAD_BYTES_MAX {
            return None;
        }
        let compressed = if raw.len() >= COMPRESS_MIN_BYTES {
            let c = lz4_flex::block::compress_prepend_size(raw);
            if c.len() <= raw.len() - (raw.len() >> COMPRESS_SAVING_SHIFT) { Some(c) } else { None }
        } else {
            None
        };
        let (codec, stored): (u8, &[u8]) = match &compressed {
            Some(c) => (CODEC_LZ4, c),
            None => (CODEC_NONE, raw),
        };
        let mut out = vec![0u8; FRAME_HEADER_BYTES + stored.len()];
        out[0..4].copy_from_slice(&FRAME_MAGIC.to_le_bytes());
        out[4] = BLOCK_DELTA;
        out[5] = codec;
        out[8..12].copy_from_slice(&(stored.len() as u32).to_le_bytes());
        out[12..16].copy_from_slice(&(raw.len() as u32).to_le_bytes());
        out[16..24].copy_from_slice(&(first_ts as i64).to_le_bytes());
        out[24..32].copy_from_slice(&(last_ts as i64).to_le_bytes());
        out[32..36].copy_from_slice(&(nb as u32).to_le_bytes());
        out[36..40].copy_from_slice(&(nu as u32).to_le_bytes());
        out[FRAME_HEADER_BYTES..].copy_from_slice(stored);
        let crc = crc32c_append(crc32c_append(0, &out[0..40]), stored);
        out[40..44].copy_from_slice(&crc.to_le_bytes());
        if !latest_into(&enc, vals, latest_nums, latest_kinds) {
            return None;
        }
        Some(Buffer::from(out))
    })
}

/// A frame time the header holds exactly: an integer within 2^53 (frame.ts writeI64).
fn times_exact(t: f64) -> bool {
    t.floor() == t && t.abs() <= 9_007_199_254_740_991.0
}

/// Path ids as the encoder takes them: a negative id reads as >= 2^31, which it refuses (its
/// path id limit is 2^28).
fn unsigned(ids: &[i32]) -> &[u32] {
    // SAFETY: i32 and u32 have one size and alignment.
    unsafe { std::slice::from_raw_parts(ids.as_ptr() as *const u32, ids.len()) }
}

/// Values as their bit patterns (NaN payloads kept).
fn bits(vals: &[f64]) -> &[u64] {
    // SAFETY: f64 and u64 have one size and alignment.
    unsafe { std::slice::from_raw_parts(vals.as_ptr() as *const u64, vals.len()) }
}

/// The block's latest values into the builder's arrays when given (PayloadEncoder::latest_into,
/// bit patterns written as they are); false when a path id is past them (nothing written).
fn latest_into(enc: &PayloadEncoder, vals: &[u64], nums: Option<Float64Array>, kinds: Option<Uint8Array>) -> bool {
    let (Some(mut nums), Some(mut kinds)) = (nums, kinds) else { return true };
    let nums: &mut [f64] = &mut nums;
    // SAFETY: f64 and u64 have one size and alignment.
    let nums: &mut [u64] = unsafe { std::slice::from_raw_parts_mut(nums.as_mut_ptr() as *mut u64, nums.len()) };
    enc.latest_into(vals, nums, &mut kinds)
}
