// The WGSL preprocessor's `#unroll I N` … `#endunroll` (src/gpu/wgsl.ts): the block repeated N times with {I} replaced
// by 0 … N−1, N a define or a literal; inside #if like any other line; errors for a missing end or a bad count.
import { expect, test } from 'bun:test';
import { preprocess } from '../../../src/gpu/wgsl.ts';

const feat = { f16: false, subgroups: false };
const body = (code: string) => code.split('\n').filter(l => !l.startsWith('const ')).join('\n');

test('#unroll repeats its block with the index substituted; the count from a define or a literal; inside #if', () => {
  const src = ['a;', '#unroll i DR', '  S[{i}] = x[{i}u * 4u];', '  y += S[{i}];', '#endunroll', '#if ON', '#unroll j 2', 'z{j};', '#endunroll', '#endif', 'b;'].join('\n');
  expect(body(preprocess(src, { DR: 3, ON: true }, feat))).toBe(['a;', '  S[0] = x[0u * 4u];', '  y += S[0];', '  S[1] = x[1u * 4u];', '  y += S[1];',
    '  S[2] = x[2u * 4u];', '  y += S[2];', 'z0;', 'z1;', 'b;'].join('\n'));
  expect(body(preprocess(src, { DR: 1, ON: false }, feat))).toBe(['a;', '  S[0] = x[0u * 4u];', '  y += S[0];', 'b;'].join('\n'));
  expect(() => preprocess('#unroll i 2\nx;', {}, feat)).toThrow('#unroll without #endunroll');
  expect(() => preprocess('#unroll i N\nx;\n#endunroll', {}, feat)).toThrow('#unroll i N: the count must be a define or number');
});
