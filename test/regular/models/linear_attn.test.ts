// Golden tests of `linear_attn` against fla's fp32 references (linear_attn-tiny): logits, greedy decode with its scores, and cached
// decode equal to the uncached logits on every backend.
import { goldenSuite } from '../../helpers/golden.ts';

goldenSuite('linear_attn-tiny');
