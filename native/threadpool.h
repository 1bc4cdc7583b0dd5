// A small fork-join thread pool. The calling thread takes part in the work, so a pool of
// size 1 starts no thread at all. One parallel_for runs at a time per pool; callers queue.
#pragma once

#include <atomic>
#include <memory>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ternion {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(task) once for every task in [0, tasks), on at most max_threads threads (the
  // caller included), and returns when all have finished. Exceptions must not escape fn.
  void parallel_for(int tasks, int max_threads, const std::function<void(int)>& fn);

 private:
  void worker_loop(int index);
  void run_tasks();

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // serializes parallel_for callers
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int)>* job_ = nullptr;
  int job_tasks_ = 0;
  int job_workers_ = 0;  // how many pool workers take part in the current job
  std::atomic<int> next_task_{0};
  int busy_workers_ = 0;
  unsigned long generation_ = 0;
  bool stopping_ = false;
};

// The process's pool, shared by every environment that loads the addon (the main thread and
// each worker thread): however many sessions and workers run at once, their parallel sections
// use these threads and queue for them, so a 2-core machine is never oversubscribed. Its size
// is the number of cores, or TERNION_MAX_THREADS (1..1024) when set. Created by the first
// environment, joined when the last holder (environment or in-flight run) lets it go. The only
// process-wide state of the addon: thread-safe, and it holds no JavaScript values.
std::shared_ptr<ThreadPool> shared_thread_pool();

// The size shared_thread_pool() has or would have.
int thread_pool_size();

}  // namespace ternion
