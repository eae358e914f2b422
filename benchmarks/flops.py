"""FLOP counts of the biLM: what one token position costs, by part.

Only multiply-adds of matrix products and convolutions are counted, 2 FLOPs
each (the convention of matmul FLOP/s). Element-wise work (gate sigmoids and
tanh, clipping, highway mixing, max-pool, masking) is left out: for the
`small` size it is about 1% of the count, for `original` less.

Per token position, with
  C = max_characters_per_token, e = char embedding size,
  filters (w_k, n_k), F = sum n_k, H = highway layers,
  P = projection_dim, D = lstm.dim (cells), L = LSTM layers:

  char-CNN convolutions   2 * e * sum_k (C - w_k + 1) * w_k * n_k
  highway                 H * 2 * (2 * F * F)        (carry gate and transform)
  char projection         2 * F * P                  (only when F != P)
  LSTM input gates        2 directions * L * 2 * P * 4D
  LSTM recurrent gates    2 directions * L * 2 * P * 4D
  LSTM projection         2 directions * L * 2 * D * P

Every LSTM layer's input is P wide (skip connections add, they do not
concatenate), so the input and recurrent gates cost the same.

A sentence of n words runs n + 2 positions (`<S>` and `</S>` are computed
like words); padding positions of a batch are computed too, but they are not
useful work, so the benchmarks count FLOPs over the positions of the
sentences only (words + 2 per sentence) and tokens/s over the words only.

Hand count (checked by `python benchmarks/flops.py`):

  filters [[1,32],[2,32],[3,64],[4,128],[5,256],[6,512],[7,1024]], C = 50:
    sum (C-w+1)*w*n = 50*1*32 + 49*2*32 + 48*3*64 + 47*4*128 + 46*5*256
                      + 45*6*512 + 44*7*1024
                    = 1600 + 3136 + 9216 + 24064 + 58880 + 138240 + 315392 = 550528
    convolutions: 2 * 16 * 550528                      = 17,616,896
  small (P=128, D=1024, L=2, H=1, F=2048):
    highway 1 * 4 * 2048^2                            = 16,777,216
    char projection 2 * 2048 * 128                    =    524,288
    input gates 2 * 2 * 2 * 128 * 4096                =  4,194,304
    recurrent gates (same)                            =  4,194,304
    LSTM projection 2 * 2 * 2 * 1024 * 128            =  1,048,576
    total                                             = 44,355,584 per position
  original (P=512, D=4096, L=2, H=2):
    highway 2 * 4 * 2048^2                            = 33,554,432
    char projection 2 * 2048 * 512                    =  2,097,152
    input gates 2 * 2 * 2 * 512 * 16384               = 67,108,864
    recurrent gates (same)                            = 67,108,864
    LSTM projection 2 * 2 * 2 * 4096 * 512            = 16,777,216
    total                                             = 204,263,424 per position

Training (`training_flops_per_position`) is counted as 3x the forward pass
(the backward pass costs about two forward passes: gradients of inputs and of
weights) for: the char-CNN on both streams (the forward and the backward LM
each read their own stream), the biLSTM, and the softmax of both directions
(full: 2 * P * vocab each; sampled: 2 * P * (negatives + 1) each).
"""

import json
import sys

PARTS = ("char_cnn_conv", "highway", "char_projection", "lstm_input_gates", "lstm_recurrent_gates",
         "lstm_projection")


def forward_flops_per_position(options):
    """FLOPs of one token position of the biLM forward pass, by part (dict, plus `total`).

    Also `char_cnn` (the first three parts) and `lstm` (the last three).
    """
    cnn, lstm = options["char_cnn"], options["lstm"]
    chars = cnn.get("max_characters_per_token", 50)
    emb = cnn["embedding"]["dim"]
    n_filters = sum(n for _, n in cnn["filters"])
    p, d, layers = lstm["projection_dim"], lstm["dim"], lstm["n_layers"]
    parts = {
        "char_cnn_conv": 2 * emb * sum((chars - w + 1) * w * n for w, n in cnn["filters"]),
        "highway": cnn.get("n_highway", 0) * 2 * (2 * n_filters * n_filters),
        "char_projection": 2 * n_filters * p if n_filters != p else 0,
        "lstm_input_gates": 2 * layers * 2 * p * 4 * d,
        "lstm_recurrent_gates": 2 * layers * 2 * p * 4 * d,
        "lstm_projection": 2 * layers * 2 * d * p,
    }
    parts["char_cnn"] = parts["char_cnn_conv"] + parts["highway"] + parts["char_projection"]
    parts["lstm"] = parts["lstm_input_gates"] + parts["lstm_recurrent_gates"] + parts["lstm_projection"]
    parts["total"] = parts["char_cnn"] + parts["lstm"]
    return parts


def sentence_flops(options, n_words):
    """Useful forward FLOPs of one sentence of `n_words` words (with `<S>` and `</S>`)."""
    return forward_flops_per_position(options)["total"] * (n_words + 2)


def training_flops_per_position(options, n_tokens_vocab, n_negative_samples=None):
    """Training FLOPs per position of the forward stream (both LMs), ~3x forward.

    `n_negative_samples` None or >= vocab: full softmax.
    """
    f = forward_flops_per_position(options)
    p = options["lstm"]["projection_dim"]
    classes = n_tokens_vocab if not n_negative_samples or n_negative_samples >= n_tokens_vocab \
        else n_negative_samples + 1
    softmax = 2 * 2 * p * classes
    return 3 * (2 * f["char_cnn"] + f["lstm"] + softmax)


# The hand counts of the docstring.
_HAND_COUNT = {
    "small": {"char_cnn_conv": 17_616_896, "highway": 16_777_216, "char_projection": 524_288,
              "lstm_input_gates": 4_194_304, "lstm_recurrent_gates": 4_194_304,
              "lstm_projection": 1_048_576, "total": 44_355_584},
    "original": {"char_cnn_conv": 17_616_896, "highway": 33_554_432, "char_projection": 2_097_152,
                 "lstm_input_gates": 67_108_864, "lstm_recurrent_gates": 67_108_864,
                 "lstm_projection": 16_777_216, "total": 204_263_424},
}


def check_hand_count():
    """Assert that the formulas give the hand counts of the module docstring."""
    from configs import get_options

    for name, expected in _HAND_COUNT.items():
        got = forward_flops_per_position(get_options(name))
        for key, value in expected.items():
            assert got[key] == value, f"{name} {key}: formula {got[key]:,} != hand count {value:,}"


def main():
    check_hand_count()
    from configs import CONFIGS, get_options

    print("hand count check: ok")
    print(f"{'config':<10}" + "".join(f"{k:>22}" for k in PARTS + ("total",)))
    for name in CONFIGS:
        f = forward_flops_per_position(get_options(name))
        print(f"{name:<10}" + "".join(f"{f[k]:>22,}" for k in PARTS + ("total",)))
    if "--json" in sys.argv:
        print(json.dumps({n: forward_flops_per_position(get_options(n)) for n in CONFIGS}, indent=1))


if __name__ == "__main__":
    main()
