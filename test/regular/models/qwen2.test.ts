// Golden tests of `qwen2` (q/k/v biases, tied embeddings) against transformers' fp32 outputs on the repository's
// own fixture test/fixtures/qwen2-tiny (made by test/fixtures/gen/make.py).
import { goldenSuite } from '../../helpers/golden.ts';

goldenSuite('qwen2-tiny');
