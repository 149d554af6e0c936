#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_set>

#include "core/error.h"

namespace mce {

void validate(const SamplingParams& p) {
  auto bad = [](const std::string& what) { throw ArgumentError(what); };
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f) bad("temperature must be a finite number >= 0");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) bad("top_p must be in (0, 1]");
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) bad("min_p must be in [0, 1]");
  if (!std::isfinite(p.repeat_penalty) || p.repeat_penalty <= 0.0f) bad("repeat_penalty must be > 0");
  if (p.repeat_last_n < -1) bad("repeat_last_n must be >= -1");
}

Sampler::Sampler(const SamplingParams& p) : p_(p) {
  validate(p);
  uint64_t seed = p.seed;
  if (seed == 0xFFFFFFFFu) seed = std::random_device{}();
  rng_.seed(seed);
}

int32_t Sampler::sample(const float* logits, int n_vocab, const std::vector<int32_t>& history) {
  work_.assign(logits, logits + n_vocab);
  if (p_.repeat_penalty != 1.0f && !history.empty()) {
    // llama.cpp's rule: divide positive logits, multiply negative ones, once
    // per distinct token of the window.
    size_t n = p_.repeat_last_n < 0 ? history.size() : std::min(history.size(), size_t(p_.repeat_last_n));
    std::unordered_set<int32_t> seen(history.end() - n, history.end());
    for (int32_t t : seen) {
      if (t < 0 || t >= n_vocab) continue;
      float& l = work_[size_t(t)];
      l = l > 0.0f ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }
  }
  if (p_.temperature <= 0.0f)
    return static_cast<int32_t>(std::max_element(work_.begin(), work_.end()) - work_.begin());

  // Candidates sorted by logit, cut by top-k.
  cand_.resize(size_t(n_vocab));
  for (int i = 0; i < n_vocab; ++i) cand_[size_t(i)] = {work_[size_t(i)], i};
  size_t k = p_.top_k > 0 ? std::min<size_t>(size_t(p_.top_k), cand_.size()) : cand_.size();
  auto desc = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) { return a.first > b.first; };
  std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.end(), desc);
  cand_.resize(k);

  // Probabilities at temperature 1 for the top-p / min-p cuts.
  const float maxl = cand_[0].first;
  std::vector<double>& prob = prob_;
  prob.resize(k);
  double sum = 0.0;
  for (size_t i = 0; i < k; ++i) sum += prob[i] = std::exp(double(cand_[i].first - maxl));
  size_t keep = k;
  if (p_.top_p < 1.0f) {
    double cum = 0.0;
    for (size_t i = 0; i < k; ++i) {
      cum += prob[i] / sum;
      if (cum >= p_.top_p) { keep = i + 1; break; }
    }
  }
  if (p_.min_p > 0.0f) {
    const double floor = p_.min_p * prob[0];
    size_t m = 1;
    while (m < keep && prob[m] >= floor) ++m;
    keep = m;
  }

  std::vector<double>& w = weight_;
  w.resize(keep);
  for (size_t i = 0; i < keep; ++i) w[i] = std::exp(double(cand_[i].first - maxl) / p_.temperature);
  std::discrete_distribution<size_t> dist(w.begin(), w.end());
  return cand_[dist(rng_)].second;
}

}  // namespace mce
