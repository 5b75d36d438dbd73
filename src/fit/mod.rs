//! `platform fit`: whether a vLLM model starts on a GPU type, before any GPU is paid for. vLLM
//! refuses to start when one request at `max_model_len` does not fit in the KV cache left after the
//! weights and its runtime overhead ("To serve at least one request with the model's max seq len
//! (N), X GiB KV cache is needed, which is larger than the available KV cache memory"); this is that
//! rule, computed from the model's `config.json` and weight sizes:
//!
//! ```text
//! KV bytes/token  = 2 × full-attention layers × max(1, KV heads / TP) × head_dim × KV dtype bytes
//!                   (+ sliding-window layers, capped at their window; MLA: layers × latent width)
//! available       = utilisation × GPU memory − weights / TP − overhead
//! fits            ⇔ KV bytes/token × maxModelLen ≤ available
//! ```
//!
//! Pure functions (no I/O): the command (`cli/fit.rs`) gathers the inputs.

mod shape;

pub use shape::{dtype_bytes, parse, Shape};

/// What is wrong with fit's inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FitError {
    #[error("{0}")]
    Config(String),
}

/// Everything the rule needs, per GPU of the pod.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub shape: Shape,
    /// All weight files' bytes (the safetensors shards).
    pub weights_bytes: u64,
    pub tensor_parallel: u32,
    /// vLLM's `--gpu-memory-utilization`.
    pub utilization: f64,
    pub gpu_bytes: u64,
    /// Activations, CUDA graphs and memory outside torch, per GPU.
    pub overhead_bytes: u64,
    /// The context one request must fit (`maxModelLen`, else the model's own maximum).
    pub max_model_len: u32,
    /// KV-cache element bytes (the model's dtype unless `--kv-cache-dtype` says fp8).
    pub kv_dtype_bytes: u32,
    /// A fixed KV-cache size the engine allots whatever memory is left (vLLM on CPU:
    /// `VLLM_CPU_KVCACHE_SPACE`).
    pub kv_cap: Option<u64>,
}

/// The numbers and the verdict.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub kv_bytes_per_token: u64,
    pub kv_bytes_needed: u64,
    pub weights_bytes_per_gpu: u64,
    pub budget_bytes: u64,
    pub available_bytes: i64,
    pub fits: bool,
    /// The longest `maxModelLen` that fits (0 when not even the weights do), capped at the
    /// model's own maximum.
    pub max_model_len_that_fits: u64,
}

/// KV-cache bytes one token takes on one GPU, with `len` tokens of context (sliding-window
/// layers hold at most their window).
pub fn kv_bytes(shape: &Shape, tp: u32, kv_dtype_bytes: u32, len: u64) -> u64 {
    let dtype = u64::from(kv_dtype_bytes);
    if let Some(width) = shape.mla_width {
        // MLA caches one latent vector per layer and token, replicated on every GPU.
        return u64::from(shape.layers) * u64::from(width) * dtype * len;
    }
    let heads = u64::from((shape.kv_heads / tp.max(1)).max(1));
    let per_layer_token = 2 * heads * u64::from(shape.head_dim) * dtype;
    let full = u64::from(shape.full_layers) * per_layer_token * len;
    let sliding_layers = u64::from(shape.layers - shape.full_layers.min(shape.layers));
    let window = shape.sliding_window.map_or(len, |w| len.min(u64::from(w)));
    full + sliding_layers * per_layer_token * window
}

/// The rule (see the module docs).
pub fn judge(i: &Inputs) -> Verdict {
    let tp = i.tensor_parallel.max(1);
    let per_token = kv_bytes(&i.shape, tp, i.kv_dtype_bytes, 1);
    let needed = kv_bytes(&i.shape, tp, i.kv_dtype_bytes, u64::from(i.max_model_len));
    let weights = i.weights_bytes.div_ceil(u64::from(tp));
    let budget = (i.utilization * i.gpu_bytes as f64) as u64;
    let mut available = budget as i64 - weights as i64 - i.overhead_bytes as i64;
    if let Some(cap) = i.kv_cap {
        // The engine allots this much to the KV cache and no more (it still needs the memory).
        available = if available < cap as i64 {
            available
        } else {
            cap as i64
        };
    }
    let cap = u64::from(i.shape.max_positions.unwrap_or(u32::MAX));
    let longest = longest_fitting(i, tp, available, cap);
    Verdict {
        kv_bytes_per_token: per_token,
        kv_bytes_needed: needed,
        weights_bytes_per_gpu: weights,
        budget_bytes: budget,
        available_bytes: available,
        fits: available >= 0 && needed <= available as u64,
        max_model_len_that_fits: longest,
    }
}

/// The longest context whose KV cache fits in `available` (a binary search: sliding-window layers
/// make the cost piecewise linear).
fn longest_fitting(i: &Inputs, tp: u32, available: i64, cap: u64) -> u64 {
    if available <= 0 {
        return 0;
    }
    let avail = available as u64;
    let (mut lo, mut hi) = (0u64, cap.min(1 << 24));
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if kv_bytes(&i.shape, tp, i.kv_dtype_bytes, mid) <= avail {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    const QWEN_05B: &str = r#"{"architectures":["Qwen2ForCausalLM"],"hidden_size":896,"num_attention_heads":14,"num_hidden_layers":24,"num_key_value_heads":2,"max_position_embeddings":32768,"max_window_layers":21,"sliding_window":32768,"use_sliding_window":false,"torch_dtype":"bfloat16"}"#;
    const QWEN_7B: &str = r#"{"hidden_size":3584,"num_attention_heads":28,"num_hidden_layers":28,"num_key_value_heads":4,"max_position_embeddings":32768,"use_sliding_window":false,"torch_dtype":"bfloat16"}"#;
    const LLAMA_31_8B: &str = r#"{"hidden_size":4096,"num_attention_heads":32,"num_hidden_layers":32,"num_key_value_heads":8,"max_position_embeddings":131072,"torch_dtype":"bfloat16"}"#;

    const KIB: u64 = 1024;
    const GIB: u64 = 1 << 30;

    #[test]
    fn kv_per_token_matches_the_published_figures() {
        for (cfg, want) in [
            (QWEN_05B, 12 * KIB),
            (QWEN_7B, 56 * KIB),
            (LLAMA_31_8B, 128 * KIB),
        ] {
            let s = parse(cfg).unwrap();
            assert_eq!(kv_bytes(&s, 1, s.dtype_bytes, 1), want);
        }
        let llama = parse(LLAMA_31_8B).unwrap();
        assert_eq!(kv_bytes(&llama, 1, 2, 131_072), 16 * GIB);
        // Tensor parallel splits the KV heads (never below one per GPU).
        assert_eq!(kv_bytes(&llama, 2, 2, 1), 64 * KIB);
        assert_eq!(kv_bytes(&parse(QWEN_05B).unwrap(), 4, 2, 1), 6 * KIB);
    }

    #[test]
    fn llama_8b_at_128k_does_not_start_on_a_24_gb_card_and_the_longest_that_fits_is_said() {
        let i = Inputs {
            shape: parse(LLAMA_31_8B).unwrap(),
            weights_bytes: 16_060_522_496,
            tensor_parallel: 1,
            utilization: 0.9,
            gpu_bytes: 23_034 * (1 << 20),
            overhead_bytes: 2 * GIB,
            max_model_len: 131_072,
            kv_dtype_bytes: 2,
            kv_cap: None,
        };
        let v = judge(&i);
        assert!(!v.fits, "{v:?}");
        assert!(v.max_model_len_that_fits > 0 && v.max_model_len_that_fits < 131_072);
        let at = kv_bytes(&i.shape, 1, 2, v.max_model_len_that_fits);
        assert!(at <= v.available_bytes as u64);
        assert!(kv_bytes(&i.shape, 1, 2, v.max_model_len_that_fits + 1) > v.available_bytes as u64);
        // On an 80 GB card it fits.
        let v = judge(&Inputs {
            gpu_bytes: 81_920 * (1 << 20),
            ..i.clone()
        });
        assert!(v.fits && v.max_model_len_that_fits == 131_072, "{v:?}");
        // Weights that do not fit at all: nothing fits.
        let v = judge(&Inputs {
            gpu_bytes: 8 * GIB,
            ..i
        });
        assert!(!v.fits && v.max_model_len_that_fits == 0 && v.available_bytes < 0);
    }

    #[test]
    fn sliding_window_layers_are_capped_and_mla_is_one_latent_per_layer() {
        let gemma = r#"{"text_config":{"num_hidden_layers":6,"num_attention_heads":8,"num_key_value_heads":4,"head_dim":256,"sliding_window":1024,"layer_types":["sliding_attention","sliding_attention","sliding_attention","sliding_attention","sliding_attention","full_attention"],"max_position_embeddings":131072},"torch_dtype":"bfloat16"}"#;
        let s = parse(gemma).unwrap();
        assert_eq!((s.full_layers, s.sliding_window), (1, Some(1024)));
        let per_layer = 2 * 4 * 256 * 2;
        assert_eq!(
            kv_bytes(&s, 1, 2, 4096),
            per_layer * 4096 + 5 * per_layer * 1024
        );
        let mla = r#"{"num_hidden_layers":61,"num_attention_heads":128,"kv_lora_rank":512,"qk_rope_head_dim":64,"hidden_size":7168,"torch_dtype":"bfloat16"}"#;
        let s = parse(mla).unwrap();
        assert_eq!(kv_bytes(&s, 8, 2, 1), 61 * 576 * 2);
    }

    #[test]
    fn a_config_without_the_needed_keys_says_which() {
        let e = parse(r#"{"num_hidden_layers": 2}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config.json has no `num_attention_heads` (a positive integer)"
        );
        assert!(parse("nope")
            .unwrap_err()
            .to_string()
            .starts_with("config.json is not JSON"));
        let e = parse(r#"{"num_hidden_layers":2,"num_attention_heads":2,"hidden_size":8,"torch_dtype":"int4"}"#).unwrap_err();
        assert!(e.to_string().contains("`int4`"), "{e}");
    }
}
