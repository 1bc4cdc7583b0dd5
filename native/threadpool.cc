#include "threadpool.h"

#include <cstdlib>

namespace ternion {

int thread_pool_size() {
  const unsigned hw = std::thread::hardware_concurrency();
  int size = hw ? static_cast<int>(hw) : 1;
  if (const char* cap = std::getenv("TERNION_MAX_THREADS")) {
    char* end = nullptr;
    const long v = std::strtol(cap, &end, 10);
    if (end != cap && *end == '\0' && v >= 1 && v <= 1024) size = static_cast<int>(v);
  }
  return size;
}

std::shared_ptr<ThreadPool> shared_thread_pool() {
  static std::mutex mutex;
  static std::weak_ptr<ThreadPool> current;
  std::lock_guard<std::mutex> lock(mutex);
  std::shared_ptr<ThreadPool> pool = current.lock();
  if (!pool) {
    pool = std::make_shared<ThreadPool>(thread_pool_size());
    current = pool;
  }
  return pool;
}

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back(&ThreadPool::worker_loop, this, i - 1);
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_tasks() {
  for (;;) {
    const int task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= job_tasks_) return;
    (*job_)(task);
  }
}

void ThreadPool::worker_loop(int index) {
  unsigned long seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || (generation_ != seen && index < job_workers_); });
      if (stopping_) return;
      seen = generation_;
    }
    run_tasks();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busy_workers_ == 0) done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int tasks, int max_threads, const std::function<void(int)>& fn) {
  if (tasks <= 0) return;
  int helpers = std::min<int>(static_cast<int>(workers_.size()), std::min(max_threads, tasks) - 1);
  if (helpers <= 0) {
    for (int t = 0; t < tasks; ++t) fn(t);
    return;
  }
  std::lock_guard<std::mutex> call(call_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    job_tasks_ = tasks;
    job_workers_ = helpers;
    busy_workers_ = helpers;
    next_task_.store(0, std::memory_order_relaxed);
    ++generation_;
  }
  wake_.notify_all();
  run_tasks();
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return busy_workers_ == 0; });
  job_ = nullptr;
}

}  // namespace ternion
