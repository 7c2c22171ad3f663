// Golden tests of `abc` against fla's fp32 references (abc-tiny): logits, greedy decode with its scores, and cached
// decode equal to the uncached logits on every backend.
import { goldenSuite } from '../../helpers/golden.ts';

goldenSuite('abc-tiny');
