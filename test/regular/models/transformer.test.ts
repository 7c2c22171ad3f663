// Golden tests of `transformer` against the reference implementation's fp32 outputs (../shared/fixtures/transformer-tiny).
import { goldenSuite } from '../../helpers/golden.ts';

goldenSuite('transformer-tiny');
