// What the decode GEMVs share (matmul_gemv_vec.wgsl, matmul_gemv_multi.wgsl; their headers say what the defines
// do): the load units and their unpacking, the register tile's vector type (CB columns of one batch row), the sums a
// lane holds, and where the transposing reduction leaves them. Pure functions only: the kernels keep their own loops
// and reductions (folding those into functions taking the sums by pointer ran 2-5× slower at 8 rows on an H200).
// The including kernel declares `x` (array<XUNIT>: storage, or workgroup memory).
// Defines used: RB, CB, CV2, CV4, E, TS, VEC, W_F32, W_F16; EMBED (x holds packed embedding rows: no xvals()).
#if VEC
alias XUNIT = vec4f;
alias WUNIT = vec4u;
#else
alias XUNIT = f32;
alias WUNIT = u32;
#endif

#if CV4
alias CV = vec4f;            // the CB columns of one batch row
#else
#if CV2
alias CV = vec2f;
#else
alias CV = f32;
#endif
#endif
const N = RB * CB;           // sums per lane
const M = N >> TS;           // sums per lane after the transposing steps

// The E weights of one unit, in element order.
fn wvals(w: WUNIT) -> array<f32, E> {
#if VEC
#if W_F32
  let f = bitcast<vec4f>(w);
  return array<f32, E>(f.x, f.y, f.z, f.w);
#else
#if W_F16
  let a = unpack2x16float(w.x); let b = unpack2x16float(w.y);
  let c = unpack2x16float(w.z); let d = unpack2x16float(w.w);
  return array<f32, E>(a.x, a.y, b.x, b.y, c.x, c.y, d.x, d.y);
#else
  let lo = bitcast<vec4f>(w << vec4u(16u));            // elements 0, 2, 4, 6
  let hi = bitcast<vec4f>(w & vec4u(0xffff0000u));     // elements 1, 3, 5, 7
  return array<f32, E>(lo.x, hi.x, lo.y, hi.y, lo.z, hi.z, lo.w, hi.w);
#endif
#endif
#else
#if W_F32
  return array<f32, E>(bitcast<f32>(w));
#else
#if W_F16
  let p = unpack2x16float(w);
#else
  let p = vec2f(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
#endif
  return array<f32, E>(p.x, p.y);
#endif
#endif
}

#if !EMBED
// The E values of x row `xr` (its first index in x's element type) under unit u.
fn xvals(xr: u32, u: u32) -> array<f32, E> {
#if VEC
#if W_F32
  let a = x[xr + u];
  return array<f32, E>(a.x, a.y, a.z, a.w);
#else
  let a = x[xr + 2u * u];
  let b = x[xr + 2u * u + 1u];
  return array<f32, E>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
#endif
#else
#if W_F32
  return array<f32, E>(x[xr + u]);
#else
  return array<f32, E>(x[xr + 2u * u], x[xr + 2u * u + 1u]);
#endif
#endif
}
#endif

// The CB loaded units unpacked and transposed: element e of every column.
fn columns(w: array<WUNIT, CB>) -> array<CV, E> {
  var f: array<array<f32, E>, CB>;
  for (var c = 0u; c < CB; c++) { f[c] = wvals(w[c]); }
  var t: array<CV, E>;
  for (var e = 0u; e < E; e++) {
#if CV4
    t[e] = vec4f(f[0][e], f[1][e], f[2][e], f[3][e]);
#else
#if CV2
    t[e] = vec2f(f[0][e], f[1][e]);
#else
    t[e] = f[0][e];
#endif
#endif
  }
  return t;
}

// column c of a row's vector
fn col(v: CV, c: u32) -> f32 {
#if CV4
  return v[c];
#else
#if CV2
  return v[c];
#else
  return v;
#endif
#endif
}

// first sum held by a lane whose low TS lane bits are b (after the transposing steps)
fn voff(b: u32) -> u32 {
  var o = 0u;
  for (var t = 0u; t < TS; t++) { o += ((b >> t) & 1u) * (N >> (t + 1u)); }
  return o;
}
