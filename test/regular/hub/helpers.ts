// Shared setup for the hub tests: temp caches, the rwkv7-tiny fixture as a mock repo, silent progress, cache inspection.
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PullOptions } from '../../../src/load/hub.ts';
import { pullModel } from '../../../src/runtime/model.ts';
import type { Progress } from '../../../src/load/progress.ts';
import { fixture } from '../../helpers/fixtures.ts';
import { fakeSha, MockHub, type MockRepo } from './mock_hub.ts';

export const TINY = fixture('rwkv7-tiny');
export const TINY_ID = 'test-org/rwkv7-tiny';
export const TINY_SHA = fakeSha(TINY_ID);
export const ROOT = join(import.meta.dir, '../../..');

/** rwkv7-tiny as a hub repo, with files fla must not download. */
export function tinyRepo(over: Partial<MockRepo> = {}): MockRepo {
  return {
    id: TINY_ID, dir: TINY!, sha: TINY_SHA, include: ['config.json', 'generation_config.json', 'model.safetensors'],
    files: { 'README.md': '# tiny\n', 'pytorch_model.bin': 'not a safetensors file', 'onnx/model.onnx': 'decoy', '.gitattributes': '*.safetensors filter=lfs\n' },
    ...over,
  };
}

export const silent: Progress = { start() {}, update() {}, done() {}, fail() {} };

export function tempDir(tag: string): string { return mkdtempSync(join(tmpdir(), `fla-hub-${tag}-`)); }

/** Options pointing at the mock with a fresh cache; HF_HOME is a temp folder so no real token file is read. */
export function opts(hub: MockHub, cacheDir: string, extra: PullOptions = {}): PullOptions {
  return { endpoint: hub.url, cacheDir, env: { HF_HOME: join(cacheDir, '..', 'hf-home-unused') }, progress: silent, ...extra };
}

export const pull = (id: string, o: PullOptions) => pullModel(id, o);

export function repoDir(cacheDir: string, id: string) { return join(cacheDir, `models--${id.replace('/', '--')}`); }

export function blobs(cacheDir: string, id: string): string[] {
  const d = join(repoDir(cacheDir, id), 'blobs');
  return existsSync(d) ? readdirSync(d).sort() : [];
}

export function link(cacheDir: string, id: string, sha: string, file: string) {
  return readlinkSync(join(repoDir(cacheDir, id), 'snapshots', sha, file));
}

export const same = (a: string, b: string) => Buffer.compare(readFileSync(a), readFileSync(b)) === 0;
