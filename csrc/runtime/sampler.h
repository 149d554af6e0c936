// Token sampling: the llama.cpp default chain in its order — repetition
// penalty, top-k, top-p, min-p, temperature, then a draw — or argmax when the
// temperature is zero.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace mce {

struct SamplingParams {
  float temperature = 0.8f;   // <= 0: greedy
  int top_k = 40;             // <= 0: off
  float top_p = 0.95f;        // 1: off
  float min_p = 0.05f;        // 0: off
  float repeat_penalty = 1.0f;  // 1: off (CTRL paper, Keskar et al. 2019)
  int repeat_last_n = 64;     // window of history the penalty looks at; -1: all
  uint64_t seed = 0xFFFFFFFFu;  // llama.cpp's LLAMA_DEFAULT_SEED means random
};

// Throws ArgumentError naming the parameter that is out of range.
void validate(const SamplingParams& p);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // history: tokens so far (prompt + generated), used by the penalty.
  int32_t sample(const float* logits, int n_vocab, const std::vector<int32_t>& history);

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<float> work_;
  std::vector<std::pair<float, int32_t>> cand_;
  // Reused across calls: with top_k off they hold a whole vocabulary.
  std::vector<double> prob_, weight_;
};

}  // namespace mce
