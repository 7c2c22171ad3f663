// Golden tests of `qwen3` against the reference implementation's fp32 outputs (../shared/fixtures/qwen3-tiny).
import { goldenSuite } from '../../helpers/golden.ts';

goldenSuite('qwen3-tiny');
