#pragma once
// The policy chain (DESIGN.md "Policy"): stages evaluated in order over an immutable config
// snapshot, each returning a Decision. One chain per worker, so stages keep per-worker state
// without locks; a reload hands every worker's chain the new snapshot.
//
// Stages today: the PBX-side source ACL. Ban list, flood limits, digest auth, fraud and
// STIR/SHAKEN slot in after it.
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "core/config/config.h"
#include "core/dialog/engine.h"
#include "core/event/worker.h"

namespace palisade::policy {

using Decision = dialog::Verdict;

struct RequestContext {
  const sip::Message* request = nullptr;  // null for the per-packet source check
  const net::Flow* flow = nullptr;
};

class Stage {
 public:
  virtual ~Stage() = default;
  virtual const char* name() const = 0;
  virtual Decision evaluate(const RequestContext& context) = 0;
  virtual void apply(const config::Config& config) = 0;
};

// Only the PBX may talk to the PBX-facing listener: anything else is dropped unanswered.
class PbxSourceAcl final : public Stage {
 public:
  const char* name() const override { return "pbx-source-acl"; }
  Decision evaluate(const RequestContext& context) override;
  void apply(const config::Config& config) override;

 private:
  std::vector<boost::asio::ip::address> allowed_;
};

class PolicyChain final : public event::SourceFilter, public dialog::RequestFilter {
 public:
  explicit PolicyChain(const config::Config& config);
  void apply(const config::Config& config);

  bool allowSource(const net::Flow& flow) override;
  Decision check(const sip::Message& request, const net::Flow& flow) override;

 private:
  std::vector<std::unique_ptr<Stage>> stages_;
};

}  // namespace palisade::policy
