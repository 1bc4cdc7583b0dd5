#include "threadpool.h"

#include <chrono>
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

int thread_pool_spin_micros() {
  int micros = 200;
  if (const char* v = std::getenv("TERNION_SPIN_MICROS")) {
    char* end = nullptr;
    const long x = std::strtol(v, &end, 10);
    if (end != v && *end == '\0' && x >= 0 && x <= 100000) micros = static_cast<int>(x);
  }
  return micros;
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
    stopping_.store(true, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Spins until done() or thread_pool_spin_micros() pass; true when done() became true.
template <typename Done>
bool spin_until(Done&& done) {
  using clock = std::chrono::steady_clock;
  static const int micros = thread_pool_spin_micros();
  if (micros == 0) return done();
  const auto until = clock::now() + std::chrono::microseconds(micros);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (clock::now() >= until) return done();
  }
}

}  // namespace

void ThreadPool::run_tasks(uint64_t generation) {
  uint64_t word = claim_.load(std::memory_order_acquire);
  for (;;) {
    const uint64_t left = word & 0xffffffffu;
    if ((word >> 32) != generation || left == 0) return;
    if (!claim_.compare_exchange_weak(word, word - 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    // Claimed: the job stays current until this task is done, so its fields are this job's
    // (read now: once the task counts as done, the next job may rewrite them).
    const int tasks = job_tasks_;
    (*job_)(tasks - static_cast<int>(left));
    if (done_tasks_.fetch_add(1, std::memory_order_acq_rel) + 1 == tasks) {
      // The caller may be asleep on done_: take the mutex so the notify cannot fall between
      // its check and its wait.
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_one();
    }
    word = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;  // generation of the last job this worker looked at
  // A new job this worker takes part in: its generation differs from seen, and index < helpers.
  auto mine = [&](uint64_t word) { return (word >> 16) != seen && index < static_cast<int>(word & 0xffff); };
  for (;;) {
    uint64_t word = job_word_.load(std::memory_order_acquire);
    if (!mine(word)) {
      // Skip jobs that leave this worker out, then spin, then sleep.
      seen = word >> 16;
      if (!spin_until([&] {
            word = job_word_.load(std::memory_order_acquire);
            return mine(word) || stopping_.load(std::memory_order_relaxed);
          })) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] {
          word = job_word_.load(std::memory_order_acquire);
          if ((word >> 16) != seen && !mine(word)) seen = word >> 16;
          return mine(word) || stopping_.load(std::memory_order_relaxed);
        });
      }
      if (stopping_.load(std::memory_order_acquire)) return;
      if (!mine(word)) continue;
    }
    seen = word >> 16;
    run_tasks(seen);
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
  // Generations count in 32 bits (claim_'s high half; job_word_ keeps 48): a worker asleep
  // through 2^32 jobs could mistake one for another, which at a million jobs a second takes
  // over an hour of it never being scheduled.
  const uint64_t generation = ((job_word_.load(std::memory_order_relaxed) >> 16) + 1) & 0xffffffffu;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    job_tasks_ = tasks;
    done_tasks_.store(0, std::memory_order_relaxed);
    claim_.store((generation << 32) | static_cast<uint64_t>(tasks), std::memory_order_release);
    job_word_.store((generation << 16) | static_cast<uint64_t>(helpers), std::memory_order_release);
  }
  wake_.notify_all();
  run_tasks(generation);
  const auto finished = [&] { return done_tasks_.load(std::memory_order_acquire) == tasks; };
  if (!spin_until(finished)) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, finished);
  }
}

}  // namespace ternion
