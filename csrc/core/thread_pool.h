// A persistent pool of worker threads for the forward pass. Decode issues a few
// hundred small parallel regions per token, so waking workers must be cheap:
// they spin briefly on an atomic generation counter before sleeping on a
// condition variable (the llama.cpp/ggml approach, simplified).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
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
  // rethrown on the calling thread.
  void parallel_for(int64_t n_tasks, const std::function<void(int64_t, int)>& fn);

 private:
  void worker_loop(int thread_index);
  void run_tasks(int thread_index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> active_{0};
  std::atomic<int64_t> next_task_{0};
  int64_t n_tasks_ = 0;
  const std::function<void(int64_t, int)>* fn_ = nullptr;
  std::exception_ptr error_;
  std::mutex error_mutex_;
  bool stop_ = false;
};

// Default worker count: the physical cores of this machine, approximated by
// the online CPUs (a 2-core VM reports 2; hyper-threads pair up on larger hosts).
int default_thread_count();

}  // namespace mce
