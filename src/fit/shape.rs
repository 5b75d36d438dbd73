//! What a model's `config.json` says about its KV cache: attention layers (full and sliding
//! window), KV heads, head width, dtype, MLA's latent width, and the longest context it was made
//! for. Multimodal configs nest the language model under `text_config`.

use serde_json::Value;

use super::FitError;

/// The KV-cache shape of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Decoder layers.
    pub layers: u32,
    /// Layers attending over the whole context (the others attend over `sliding_window` tokens).
    pub full_layers: u32,
    pub sliding_window: Option<u32>,
    /// Query heads (vLLM needs them divisible by the tensor parallel size).
    pub heads: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
    /// Bytes of one weight/KV element in the model's dtype.
    pub dtype_bytes: u32,
    /// The model's dtype as its config names it.
    pub dtype: String,
    /// Multi-head latent attention (DeepSeek): one cached vector of this width per layer and token.
    pub mla_width: Option<u32>,
    /// `max_position_embeddings`: the longest context the model was trained for.
    pub max_positions: Option<u32>,
}

fn uint(c: &Value, key: &str) -> Option<u32> {
    c.get(key)?.as_u64().and_then(|n| u32::try_from(n).ok())
}

fn need(c: &Value, key: &str) -> Result<u32, FitError> {
    uint(c, key)
        .ok_or_else(|| FitError::Config(format!("config.json has no `{key}` (a positive integer)")))
}

/// Bytes per element of a dtype config.json names (`torch_dtype` or `dtype`).
pub fn dtype_bytes(dtype: &str) -> Option<u32> {
    match dtype {
        "float32" | "fp32" => Some(4),
        "bfloat16" | "float16" | "half" | "bf16" | "fp16" => Some(2),
        "float8_e4m3fn" | "float8_e5m2" | "fp8" | "int8" | "uint8" => Some(1),
        _ => None,
    }
}

/// Read the shape from `config.json`'s text.
pub fn parse(text: &str) -> Result<Shape, FitError> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| FitError::Config(format!("config.json is not JSON: {e}")))?;
    let c = root
        .get("text_config")
        .filter(|t| t.is_object())
        .unwrap_or(&root);
    let layers = need(c, "num_hidden_layers")?;
    let heads = need(c, "num_attention_heads")?;
    if layers == 0 || heads == 0 {
        return Err(FitError::Config(
            "config.json has zero layers or attention heads".into(),
        ));
    }
    let kv_heads = uint(c, "num_key_value_heads").unwrap_or(heads);
    let head_dim = match uint(c, "head_dim") {
        Some(d) if d > 0 => d,
        _ => need(c, "hidden_size")? / heads,
    };
    let dtype = ["torch_dtype", "dtype"]
        .iter()
        .find_map(|k| c.get(*k).or_else(|| root.get(*k)).and_then(Value::as_str))
        .unwrap_or("bfloat16")
        .to_string();
    let dtype_bytes = dtype_bytes(&dtype).ok_or_else(|| {
        FitError::Config(format!("config.json's dtype `{dtype}` is not one fit knows (float32, bfloat16, float16, float8)"))
    })?;
    let mla_width = uint(c, "kv_lora_rank").map(|r| r + uint(c, "qk_rope_head_dim").unwrap_or(0));
    let (full_layers, sliding_window) = attention_layers(c, layers);
    Ok(Shape {
        layers,
        full_layers,
        sliding_window,
        heads,
        kv_heads,
        head_dim,
        dtype_bytes,
        dtype,
        mla_width,
        max_positions: uint(c, "max_position_embeddings"),
    })
}

/// How many layers attend over the full context, and the sliding window of the others: from
/// `layer_types` when given (Gemma 3, Qwen3-Next, gpt-oss), else every layer is full unless
/// `use_sliding_window` says otherwise (Qwen2: layers from `max_window_layers` on slide).
fn attention_layers(c: &Value, layers: u32) -> (u32, Option<u32>) {
    let window = uint(c, "sliding_window");
    if let Some(types) = c.get("layer_types").and_then(Value::as_array) {
        let full = types
            .iter()
            .filter(|t| t.as_str().is_some_and(|s| s == "full_attention"))
            .count() as u32;
        return (full.min(layers), window.filter(|_| full < layers));
    }
    if c.get("use_sliding_window").and_then(Value::as_bool) == Some(true) {
        if let Some(w) = window {
            let full = uint(c, "max_window_layers").unwrap_or(0).min(layers);
            return (full, Some(w));
        }
    }
    (layers, None)
}
