"""Measures fla itself (PyTorch + its Triton kernels, Hugging Face generate) on the shapes of `fla bench --synthetic`,
on the same GPU, for BENCHMARKS.md. Random bf16 weights; greedy decode; CUDA-synchronised wall times.

Run on the GPU machine with fla's source importable (it travels in .gpu/, never committed):
    PYTHONPATH=.gpu/fla-src python3 bench/fla_bench.py --shapes rwkv7-1.5b,gated_deltanet-1.3b,llama-1b -p 512 -n 128
Prints one JSON line per (shape, figure).
"""
import argparse, json, statistics, time

import torch

SHAPES = {  # the same configs as src/bench/synthetic.ts
    'rwkv7-0.1b': ('rwkv7', dict(hidden_size=768, num_hidden_layers=12, head_dim=64, vocab_size=65536, decay_low_rank_dim=64, a_low_rank_dim=64, v_low_rank_dim=32, gate_low_rank_dim=128)),
    'rwkv7-1.5b': ('rwkv7', dict(hidden_size=2048, num_hidden_layers=24, head_dim=64, vocab_size=65536, decay_low_rank_dim=96, a_low_rank_dim=96, v_low_rank_dim=64, gate_low_rank_dim=256)),
    'gated_deltanet-1.3b': ('gated_deltanet', dict(hidden_size=2048, num_hidden_layers=24, num_heads=16, head_dim=128, expand_v=2, use_gate=True, use_short_conv=True, conv_size=4, vocab_size=32000)),
    'llama-1b': ('llama', dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, head_dim=64, vocab_size=128256, rms_norm_eps=1e-5, max_position_embeddings=131072, tie_word_embeddings=True, rope_theta=500000.0, rope_scaling=dict(rope_type='llama3', factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=8192))),
}


def build(shape):
    from transformers import AutoConfig, AutoModelForCausalLM
    kind, cfg = SHAPES[shape]
    if kind == 'llama':
        from transformers import LlamaConfig
        config = LlamaConfig(**cfg)
    else:
        import fla  # noqa: F401  (registers fla's model types with transformers)
        config = AutoConfig.for_model(kind, **cfg)
    torch.manual_seed(0)
    with torch.device('cuda'):
        model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    return model.eval()


def timed(fn, reps):
    fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return out


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--shapes', default='rwkv7-1.5b,gated_deltanet-1.3b,llama-1b')
    ap.add_argument('-p', type=int, default=512)
    ap.add_argument('-n', type=int, default=128)
    ap.add_argument('-r', type=int, default=3)
    a = ap.parse_args()
    dev = torch.cuda.get_device_name()
    for shape in a.shapes.split(','):
        try:
            model = build(shape)
        except Exception as e:  # report and go on with the other shapes
            print(json.dumps({'shape': shape, 'error': f'{type(e).__name__}: {e}'[:300]}), flush=True)
            continue
        V = model.config.vocab_size
        ids = torch.randint(0, V, (1, a.p), device='cuda')
        pre = timed(lambda: model(ids, use_cache=False), a.r)
        gen = timed(lambda: model.generate(ids, max_new_tokens=a.n, min_new_tokens=a.n, do_sample=False, use_cache=True), a.r)
        prefill_s = statistics.mean(pre)
        tg = [a.n / max(g - prefill_s, 1e-9) for g in gen]
        base = {'shape': shape, 'device': dev, 'torch': torch.__version__}
        print(json.dumps({**base, 'test': f'pp{a.p}', 'mean': a.p / prefill_s, 'std': statistics.stdev([a.p / x for x in pre]) if a.r > 1 else 0, 'unit': 't/s'}), flush=True)
        print(json.dumps({**base, 'test': f'tg{a.n} (HF generate, batch 1)', 'mean': statistics.mean(tg), 'std': statistics.stdev(tg) if a.r > 1 else 0, 'unit': 't/s'}), flush=True)
        del model
        torch.cuda.empty_cache()


if __name__ == '__main__':
    main()
