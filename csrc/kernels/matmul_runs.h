// How the matmul drivers (matmul.cpp, w8a8_matmul.cpp) cut a call's rows into
// the tasks parallel_for hands out, and the tile budgets they share.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mce {

// Budget for one token tile of int8 activations, so that it stays in L2 while
// every weight group of a task sweeps over it.
constexpr size_t kActTileBytes = 192 * 1024;
// Tasks per thread in prefill: enough to even out a noisy core.
constexpr int64_t kTasksPerThread = 8;

// A run of items (the unit of a path: 16-row tiles, 8-row groups, 32-row
// blocks) of one matrix of the call; a run never crosses into the next matrix.
struct Run {
  int matrix;
  int64_t begin, end;  // items of that matrix
};

// Runs over n matrices of items[i] items each, into `runs` (cleared first).
// Prefill (n_tiles > 1 token tiles, each meeting every run): runs of
// `equal_run` items. Decode (one token tile): guided self-scheduling
// (Polychronopoulos & Kuck, IEEE Trans. Computers 1987): each run takes
// ceil(left / (2 * threads)) of the items left, so the first runs are long
// (few hand-outs, long prefetch streams) and the last ones short, and the
// threads finish within a short run of each other. Equal runs of 1/8 of a
// thread's share left the other thread waiting at the end of every matmul for
// about half a run: 4% of a decode step of the 1B-shape w4g64 model at 2
// threads (perf).
inline void split_runs(const int64_t* items, int n, int threads, int64_t n_tiles, int64_t equal_run,
                       std::vector<Run>& runs) {
  runs.clear();
  int64_t left = 0;
  for (int i = 0; i < n; ++i) left += items[i];
  const int64_t split = 2 * int64_t(std::max(threads, 1));
  for (int i = 0; i < n; ++i)
    for (int64_t b = 0; b < items[i];) {
      const int64_t want = n_tiles == 1 ? (left + split - 1) / split : equal_run;
      const int64_t len = std::min(items[i] - b, std::max<int64_t>(1, want));
      runs.push_back({i, b, b + len});
      b += len;
      left -= len;
    }
}

// The calling thread's run list, reused from call to call (decode makes a
// hundred matmul calls per token). A driver's parallel tasks read it through a
// reference taken on the calling thread.
inline std::vector<Run>& run_scratch() {
  thread_local std::vector<Run> runs;
  return runs;
}

}  // namespace mce
