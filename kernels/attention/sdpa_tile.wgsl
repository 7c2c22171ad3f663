// Shared by the query-row-tiled sdpa kernels (sdpa_flash.wgsl, sdpa_sgmat.wgsl): the 16-bit cache widening and the
// workgroup → row tile mapping. The includer binds `step`, `stepmeta` and `dims` (H, KV, window, TPS) and defines
// BR (query rows a workgroup) and BC (keys a tile).

#if KV16
// two u32 words of a 16-bit cache → their 4 elements (f16 halves with KV_F16, else bf16)
fn widen(w: vec2u) -> vec4f {
#if KV_F16
  return vec4f(unpack2x16float(w.x), unpack2x16float(w.y));
#else
  return vec4f(bitcast<f32>(w.x << 16u), bitcast<f32>(w.x & 0xffff0000u), bitcast<f32>(w.y << 16u), bitcast<f32>(w.y & 0xffff0000u));
#endif
}
#endif

// What workgroup `wid` of the b · TPS · KV grid takes: row tile r0 … r0 + BR − 1 of sequence cu (row r: token r / G,
// query head kh·G + r % G; the tiles of the longest causal rows first), `rows` = its sequence's token rows × G, the
// keys jstart (a multiple of BC; windowed: the first any of its rows sees) … pmax (the last row's position).
// r0 ≥ rows: nothing to do (past the step's sequences too: rows 0).
struct RowTile { kh: u32, cu: Cursor, rows: u32, r0: u32, pmax: u32, jstart: u32 }

fn row_tile(wid: u32) -> RowTile {
  var t: RowTile;
  let KV = dims.KV;
  let G = dims.H / KV;
  let per_seq = dims.TPS * KV;
  let sq = wid / per_seq;
  if (sq >= step.b) { return t; }
  let tile = dims.TPS - 1u - (wid % per_seq) / KV;
  t.kh = (wid % per_seq) % KV;
  t.cu = cursor(sq);
  t.rows = t.cu.len * G;
  t.r0 = tile * BR;
  if (t.r0 >= t.rows) { return t; }
  let rlast = min(t.r0 + BR, t.rows) - 1u;
  let pmin = t.cu.pos + t.r0 / G;
  t.pmax = t.cu.pos + rlast / G;
  var js = 0u;
  if (dims.window > 0u && pmin + 1u > dims.window) { js = pmin + 1u - dims.window; }
  t.jstart = (js / BC) * BC;
  return t;
}

// the q / out row (token · H + head) of the tile's row rr (r0 ≤ rr < rows)
fn q_row(t: RowTile, rr: u32) -> u32 {
  let G = dims.H / dims.KV;
  return (t.cu.start + rr / G) * dims.H + t.kh * G + rr % G;
}
