#pragma once
// Deadline-ordered callbacks for one worker (transaction timers A–M, call guards).
// Owned and driven by a single worker thread; tests drive it with a manual clock.
#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>

#include "core/base/clock.h"
#include "core/base/owner_thread.h"

namespace palisade::event {

class TimerQueue {
 public:
  using Id = std::uint64_t;  // 0 is never a valid id

  Id schedule(base::Millis deadline, std::function<void()> fn);
  // Cancelling an id that already fired or was cancelled is a no-op. Unchecked: owners cancel
  // their timers in destructors, which may run on the control thread after the worker stopped.
  void cancel(Id& id);
  // Runs every callback due at `now`, including ones scheduled by callbacks for <= now.
  void runDue(base::Millis now);
  // Earliest deadline, or -1 when nothing is scheduled.
  base::Millis nextDeadline() const;
  std::size_t size() const { return by_deadline_.size(); }

 private:
  using Key = std::pair<base::Millis, Id>;
  base::OwnerThread owner_;
  std::map<Key, std::function<void()>> by_deadline_;
  std::unordered_map<Id, base::Millis> deadline_of_;
  Id next_id_ = 1;
};

}  // namespace palisade::event
