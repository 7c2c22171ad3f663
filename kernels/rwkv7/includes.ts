// The WGSL pieces RWKV7's kernels share (op-local includes: every rwkv7 op, and every op that launches their kernels, registers them).
import gemv from './rwkv7_gemv.wgsl' with { type: 'text' };
import red from './rwkv7_red.wgsl' with { type: 'text' };
import chan from './wkv7_chan.wgsl' with { type: 'text' };
import token from './wkv7_token.wgsl' with { type: 'text' };

export const RWKV7_INCLUDES = { 'rwkv7_gemv.wgsl': gemv, 'rwkv7_red.wgsl': red, 'wkv7_chan.wgsl': chan, 'wkv7_token.wgsl': token };
