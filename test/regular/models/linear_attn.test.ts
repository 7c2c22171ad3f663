// Golden tests of linear attention against fla's fp32 references on linear_attn-tiny: logits of every reference sequence and greedy
// tokens on every backend, and prefill-then-cached-decode equal to the uncached logits.
import { describe } from 'bun:test';
import { fixture } from '../../helpers/fixtures.ts';
import { goldenSuite } from './linear_golden.ts';

const tiny = fixture('linear_attn-tiny');
describe.skipIf(!tiny)('linear_attn-tiny golden', () => goldenSuite(tiny!));
