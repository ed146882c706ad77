#include "core/event/timer_queue.h"

namespace palisade::event {

TimerQueue::Id TimerQueue::schedule(base::Millis deadline, std::function<void()> fn) {
  owner_.check("TimerQueue");
  Id id = next_id_++;
  by_deadline_.emplace(Key{deadline, id}, std::move(fn));
  deadline_of_.emplace(id, deadline);
  return id;
}

void TimerQueue::cancel(Id& id) {
  if (id == 0) return;
  auto it = deadline_of_.find(id);
  if (it != deadline_of_.end()) {
    by_deadline_.erase(Key{it->second, id});
    deadline_of_.erase(it);
  }
  id = 0;
}

void TimerQueue::runDue(base::Millis now) {
  owner_.check("TimerQueue");
  while (!by_deadline_.empty()) {
    auto it = by_deadline_.begin();
    if (it->first.first > now) break;
    std::function<void()> fn = std::move(it->second);
    deadline_of_.erase(it->first.second);
    by_deadline_.erase(it);
    fn();
  }
}

base::Millis TimerQueue::nextDeadline() const {
  return by_deadline_.empty() ? -1 : by_deadline_.begin()->first.first;
}

}  // namespace palisade::event
