// Golden tests of the delta-rule families against fla's fp32 references (gated_deltanet-tiny, delta_net-tiny): logits,
// greedy decode with its scores, and cached decode after a (chunked) prefill equal to the uncached logits.
import { goldenSuite } from '../../helpers/golden.ts';

goldenSuite('gated_deltanet-tiny');
goldenSuite('delta_net-tiny');
