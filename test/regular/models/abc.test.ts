// Golden tests of ABC against fla's fp32 references on abc-tiny: logits of every reference sequence and greedy
// tokens on every backend, and prefill-then-cached-decode equal to the uncached logits.
import { describe } from 'bun:test';
import { fixture } from '../../helpers/fixtures.ts';
import { goldenSuite } from './linear_golden.ts';

const tiny = fixture('abc-tiny');
describe.skipIf(!tiny)('abc-tiny golden', () => goldenSuite(tiny!));
