// Packed variable-length batches of `qwen3_moe` equal one-by-one runs (routed experts: GEMV for decode steps,
// grouped GEMM for packed prefill).
import { varlenSuite } from '../helpers/golden.ts';

varlenSuite('qwen3_moe-tiny');
