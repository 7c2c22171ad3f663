// Packed variable-length batches of `qwen2` equal one-by-one runs.
import { varlenSuite } from '../helpers/golden.ts';

varlenSuite('qwen2-tiny');
