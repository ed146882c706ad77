#include "policy/policy_chain.h"

#include <algorithm>

namespace palisade::policy {

namespace {

// An IPv4-mapped IPv6 source compares equal to its IPv4 form.
boost::asio::ip::address canonical(const boost::asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6());
  }
  return address;
}

}  // namespace

Decision PbxSourceAcl::evaluate(const RequestContext& context) {
  if (context.flow->side != net::Side::Pbx) return {};
  auto source = canonical(context.flow->remote.address);
  if (std::find(allowed_.begin(), allowed_.end(), source) != allowed_.end()) return {};
  return Decision{Decision::Kind::Drop, 0, {}};
}

void PbxSourceAcl::apply(const config::Config& config) {
  allowed_.clear();
  for (const auto& text : config.pbx.addresses) {
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(text, ec);
    if (!ec) allowed_.push_back(canonical(address));
  }
}

PolicyChain::PolicyChain(const config::Config& config) {
  stages_.push_back(std::make_unique<PbxSourceAcl>());
  apply(config);
}

void PolicyChain::apply(const config::Config& config) {
  for (auto& stage : stages_) stage->apply(config);
}

bool PolicyChain::allowSource(const net::Flow& flow) {
  RequestContext context{nullptr, &flow};
  // Only stages that need no message run per packet; today that is the ACL.
  return stages_.front()->evaluate(context).kind == Decision::Kind::Continue;
}

Decision PolicyChain::check(const sip::Message& request, const net::Flow& flow) {
  RequestContext context{&request, &flow};
  for (auto& stage : stages_) {
    Decision decision = stage->evaluate(context);
    if (decision.kind != Decision::Kind::Continue) return decision;
  }
  return {};
}

}  // namespace palisade::policy
