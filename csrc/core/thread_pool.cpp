#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
static inline void cpu_relax() { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax() { asm volatile("yield"); }
#else
static inline void cpu_relax() {}
#endif

namespace mce {

namespace {
// How long an idle worker spins before it sleeps. Long enough to cover the gap
// between two matmuls of one decode step, short enough not to burn a core when
// the host application is idle.
constexpr auto kSpinTime = std::chrono::microseconds(200);

constexpr int kIndexBits = 22;
constexpr uint64_t kIndexMask = (uint64_t{1} << kIndexBits) - 1;
constexpr uint64_t kGenMask = (uint64_t{1} << (64 - 2 * kIndexBits)) - 1;

inline uint64_t gen_of(uint64_t w) { return w >> (2 * kIndexBits); }
inline uint64_t count_of(uint64_t w) { return (w >> kIndexBits) & kIndexMask; }
inline uint64_t next_of(uint64_t w) { return w & kIndexMask; }
inline uint64_t make_work(uint64_t gen, uint64_t count) {
  return ((gen & kGenMask) << (2 * kIndexBits)) | (count << kIndexBits);
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    stop_.store(true, std::memory_order_release);
    // A new generation with no tasks wakes every sleeper.
    work_.store(make_work(gen_of(work_.load()) + 1, 0), std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_tasks(int thread_index) {
  uint64_t w = work_.load(std::memory_order_acquire);
  while (next_of(w) < count_of(w)) {
    if (!work_.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    // The claimed task keeps its region open (the caller waits for done_), so
    // fn_ still belongs to the generation of w.
    try {
      (*fn_)(static_cast<int64_t>(next_of(w)), thread_index);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
    done_.fetch_add(1, std::memory_order_acq_rel);
    w = work_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker_loop(int thread_index) {
  uint64_t seen = gen_of(work_.load(std::memory_order_acquire));
  // A worker that starts after the pool is already being destroyed has seen
  // the last generation: stop_ is checked wherever it waits.
  auto idle = [&] { return gen_of(work_.load()) == seen && !stop_.load(); };
  for (;;) {
    const auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
    for (int spins = 0; idle(); ++spins) {
      cpu_relax();
      if ((spins & 63) != 63) continue;
      if (std::chrono::steady_clock::now() < spin_until) {
        std::this_thread::yield();
        continue;
      }
      std::unique_lock<std::mutex> lock(sleep_mutex_);
      // seq_cst on both sides (this increment and the load in idle(); the
      // caller's store of work_ and load of sleepers_): without it each side
      // could miss the other's write and the wake-up would be lost.
      sleepers_.fetch_add(1);
      wake_.wait(lock, [&] { return !idle(); });
      sleepers_.fetch_sub(1);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = gen_of(work_.load(std::memory_order_acquire));
    run_tasks(thread_index);
  }
}

void ThreadPool::parallel_for(int64_t n_tasks, const std::function<void(int64_t, int)>& fn) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t, 0);
    return;
  }
  if (n_tasks > kMaxTasks) {
    // Rare and huge: split into regions the task word can describe.
    for (int64_t base = 0; base < n_tasks; base += kMaxTasks) {
      const int64_t n = std::min(kMaxTasks, n_tasks - base);
      parallel_for(n, [&](int64_t t, int th) { fn(base + t, th); });
    }
    return;
  }
  fn_ = &fn;
  error_ = nullptr;
  done_.store(0, std::memory_order_relaxed);
  const uint64_t gen = gen_of(work_.load(std::memory_order_relaxed)) + 1;
  work_.store(make_work(gen, static_cast<uint64_t>(n_tasks)));
  if (sleepers_.load() > 0) {
    // Taking the lock orders the new generation against a worker that is
    // about to sleep.
    { std::lock_guard<std::mutex> lock(sleep_mutex_); }
    wake_.notify_all();
  }
  run_tasks(0);
  // Only tasks some worker has claimed are outstanding now.
  for (int spins = 0; done_.load(std::memory_order_acquire) != n_tasks; ++spins) {
    if (spins < 4000) cpu_relax();
    else std::this_thread::yield();
  }
  fn_ = nullptr;
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

int default_thread_count() {
  // Count distinct (physical package, core id) pairs; fall back to the
  // number of online CPUs.
  std::set<std::pair<std::string, std::string>> cores;
  std::ifstream info("/proc/cpuinfo");
  std::string line, phys, core;
  while (std::getline(info, line)) {
    auto value = [&] { auto p = line.find(':'); return p == std::string::npos ? std::string() : line.substr(p + 1); };
    if (line.rfind("physical id", 0) == 0) phys = value();
    else if (line.rfind("core id", 0) == 0) core = value();
    else if (line.empty() && !core.empty()) { cores.insert({phys, core}); core.clear(); }
  }
  if (!core.empty()) cores.insert({phys, core});
  unsigned hw = std::thread::hardware_concurrency();
  int n = cores.empty() ? static_cast<int>(hw) : static_cast<int>(cores.size());
  if (hw > 0 && n > static_cast<int>(hw)) n = static_cast<int>(hw);
  return n < 1 ? 1 : n;
}

}  // namespace mce
