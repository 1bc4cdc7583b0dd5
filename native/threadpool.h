// A small fork-join thread pool. The calling thread takes part in the work, so a pool of
// size 1 starts no thread at all. One parallel_for runs at a time per pool; callers queue.
//
// Tasks are claimed one at a time from a word holding the job's generation and the tasks left,
// and the caller returns as soon as every task has finished: it never waits for a worker that
// had nothing to do. (It used to wait for each helper to check in; on a loaded machine a
// descheduled helper then held every parallel section for a time slice, and small steps, an
// LSTM's per-step product, ran slower on two threads than on one.) A worker that wakes late
// finds its job's generation gone and claims nothing.
//
// Between jobs a worker spins for a short while (thread_pool_spin_micros()) before it sleeps on
// the condition variable, and the caller spins the same while for the tasks to finish: a
// model runs one parallel section per layer step, often only tens of microseconds apart, and
// waking a sleeping thread per section (a futex call, and on a VM an idle vCPU's exit) cost
// more than small layers gain from the second core: measured here, the 28x28 model ran slower
// on 2 threads than on 1 without spinning, and faster with it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
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
  // Claims and runs tasks of job `generation` while it has some left.
  void run_tasks(uint64_t generation);

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // serializes parallel_for callers
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  // The current job. job_ and job_tasks_ are written before claim_ and job_word_ publish it, and
  // read only after a task of it has been claimed: the job cannot end (and the next one cannot
  // rewrite them) before that task is done.
  const std::function<void(int)>* job_ = nullptr;
  int job_tasks_ = 0;
  // (generation << 16) | helpers: which job is current and how many pool workers take part,
  // in one word so that a worker never pairs one job's generation with another's helpers.
  std::atomic<uint64_t> job_word_{0};
  // (generation << 32) | tasks not yet claimed. Task tasks - left is claimed by the thread whose
  // compare-exchange takes left to left - 1 under the same generation.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int> done_tasks_{0};
  std::atomic<bool> stopping_{false};
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

// How long an idle worker, and a caller waiting for its workers, spin before they block:
// TERNION_SPIN_MICROS (0..100000; 0 blocks at once, as a service sharing its cores with other
// busy work may prefer), else 200 microseconds.
int thread_pool_spin_micros();

}  // namespace ternion
