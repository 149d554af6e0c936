// The generation loop: prompt prefill (reusing whatever prefix of it is
// already in the KV cache, as llama-cpp-python does), then one decode step and
// one sample per call. Python iterates over next() with the GIL released.
#pragma once
#include <string>
#include <vector>

#include "model/model.h"
#include "runtime/sampler.h"

namespace mce {

struct GenerateOptions {
  int max_tokens = 128;             // < 0: until the context is full
  std::vector<int32_t> stop_ids;    // end-of-generation tokens (EOS, EOT, ...)
  SamplingParams sampling;
};

class Generator {
 public:
  Generator(Model& model, std::vector<int32_t> prompt, const GenerateOptions& opts);
  // Next token, or -1 once finished; finish_reason() then says why.
  int32_t next();
  const std::string& finish_reason() const { return finish_reason_; }
  int n_generated() const { return n_generated_; }
  // Prompt tokens actually evaluated (the rest came from the cache).
  int n_prompt_evaluated() const { return n_prompt_evaluated_; }

 private:
  void finish(const char* why) { finish_reason_ = why; done_ = true; }

  Model& model_;
  std::vector<int32_t> prompt_;
  GenerateOptions opts_;
  Sampler sampler_;
  std::vector<float> logits_;
  int32_t last_ = -1;
  int n_generated_ = 0;
  int n_prompt_evaluated_ = 0;
  bool started_ = false;
  bool done_ = false;
  std::string finish_reason_;
};

}  // namespace mce
