// Variable-length batching of the delta-rule families: packed steps, batched greedy decode and budget splits.
import { varlenSuite } from '../helpers/golden.ts';

varlenSuite('gated_deltanet-tiny');
varlenSuite('delta_net-tiny');
