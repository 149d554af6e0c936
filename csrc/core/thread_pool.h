// A persistent pool of worker threads for the forward pass. Decode issues a few
// hundred small parallel regions per token, so starting one must be cheap and
// must not wait for a worker the OS has not scheduled: idle workers spin
// briefly on one atomic word before sleeping on a condition variable (the
// llama.cpp/ggml approach), and the caller waits only for tasks a worker has
// actually claimed, never for a worker that has not woken up yet — on a busy
// machine (or inside an app with its own threads) a late worker simply finds
// no work left, so the pool never oversubscribes the caller's time slice.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mce {

class ThreadPool {
 public:
  // n_threads counts the calling thread, which always takes part in the work.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(task, thread) for task in [0, n_tasks); tasks are handed out
  // dynamically. Returns when all tasks are done. Exceptions in fn are
  // rethrown on the calling thread (the first one; later tasks still run).
  // Not reentrant: fn must not call parallel_for on the same pool.
  void parallel_for(int64_t n_tasks, const std::function<void(int64_t, int)>& fn);

  // Largest n_tasks one call accepts.
  static constexpr int64_t kMaxTasks = (int64_t{1} << 22) - 1;

 private:
  void worker_loop(int thread_index);
  // Claims and runs tasks of the region published in `work_` until none is
  // left; returns the number it ran.
  void run_tasks(int thread_index);

  int n_threads_;
  std::vector<std::thread> workers_;
  // One word describes the current region: generation (20 bits), task count
  // (22 bits) and next unclaimed task (22 bits). Claiming is a CAS on it, so
  // a worker can never claim a task of a region other than the one whose
  // generation and bound it read.
  std::atomic<uint64_t> work_{0};
  std::atomic<int64_t> done_{0};
  const std::function<void(int64_t, int)>* fn_ = nullptr;
  std::exception_ptr error_;
  std::mutex error_mutex_;
  // Sleeping workers wait here for the generation to change.
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

// Default worker count: the physical cores of this machine, approximated by
// the online CPUs (a 2-core VM reports 2; hyper-threads pair up on larger hosts).
int default_thread_count();

}  // namespace mce
