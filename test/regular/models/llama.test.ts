// Golden tests of `llama` against the reference implementation's fp32 outputs (../shared/fixtures/llama-tiny).
import { goldenSuite } from '../../helpers/golden.ts';

goldenSuite('llama-tiny');
