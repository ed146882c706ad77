#pragma once
// Bounded lock-free multi-producer / single-consumer queue of owned pointers, one per worker
// (Vyukov's bounded queue with a per-slot sequence). Producers never block: push() fails
// when the queue is full and the caller counts the overflow.
#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

namespace palisade::event {

template <typename T>
class Inbox {
 public:
  // `capacity` must be a power of two (validated by the config loader).
  explicit Inbox(std::size_t capacity) : slots_(capacity), mask_(capacity - 1) {
    for (std::size_t i = 0; i < capacity; ++i) slots_[i].sequence.store(i, std::memory_order_relaxed);
  }
  ~Inbox() {
    while (pop() != nullptr) {
    }
  }
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  // Any thread. On failure the item stays with the caller.
  bool push(std::unique_ptr<T>& item) {
    std::size_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      Slot& slot = slots_[pos & mask_];
      std::size_t seq = slot.sequence.load(std::memory_order_acquire);
      auto diff = static_cast<std::ptrdiff_t>(seq) - static_cast<std::ptrdiff_t>(pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          slot.value = item.release();
          slot.sequence.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // full
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  // Consumer thread only: how many items wait (exact for the consumer, which alone pops).
  std::size_t size() const { return tail_.load(std::memory_order_acquire) - head_; }
  std::size_t capacity() const { return slots_.size(); }

  // Consumer thread only. nullptr when empty.
  std::unique_ptr<T> pop() {
    Slot& slot = slots_[head_ & mask_];
    std::size_t seq = slot.sequence.load(std::memory_order_acquire);
    if (static_cast<std::ptrdiff_t>(seq) - static_cast<std::ptrdiff_t>(head_ + 1) < 0) return nullptr;
    std::unique_ptr<T> item(slot.value);
    slot.value = nullptr;
    slot.sequence.store(head_ + mask_ + 1, std::memory_order_release);
    ++head_;
    return item;
  }

 private:
  struct alignas(64) Slot {
    std::atomic<std::size_t> sequence{0};
    T* value = nullptr;
  };
  std::vector<Slot> slots_;
  const std::size_t mask_;
  alignas(64) std::atomic<std::size_t> tail_{0};
  alignas(64) std::size_t head_ = 0;
};

}  // namespace palisade::event
