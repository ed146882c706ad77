#include "core/routing/local_location_store.h"

#include <gtest/gtest.h>

namespace palisade::routing {
namespace {

net::Flow flowFrom(const char* address, std::uint16_t port) {
  net::Flow flow;
  flow.remote.address = boost::asio::ip::make_address(address);
  flow.remote.port = port;
  return flow;
}

Registration registration(const std::string& user, const net::Flow& flow, std::uint32_t cseq,
                          std::vector<Registration::Contact> contacts) {
  Registration r;
  r.user = user;
  r.flow = flow;
  r.call_id = "call-" + user;
  r.cseq = cseq;
  r.contacts = std::move(contacts);
  return r;
}

TEST(LocalLocationStore, BindsRefreshesAndRemoves) {
  LocalLocationStore store;
  net::Flow phone = flowFrom("192.0.2.10", 5060);
  auto made = store.update(registration("2001", phone, 1, {{"sip:2001@10.0.0.1", 60'000}}), 1'000);
  EXPECT_EQ(made.outcome, RegistrationResult::Outcome::Updated);
  EXPECT_EQ(made.added, 1u);
  ASSERT_EQ(store.lookup("2001", 1'000).size(), 1u);
  EXPECT_EQ(store.lookup("2001", 1'000)[0].expires, 61'000);
  EXPECT_TRUE(store.registeredFlow(phone, 1'000));
  EXPECT_FALSE(store.registeredFlow(flowFrom("192.0.2.10", 5061), 1'000));

  // A second contact from another flow: newest first.
  net::Flow laptop = flowFrom("192.0.2.11", 5070);
  auto second = store.update(registration("2001", laptop, 2, {{"sip:2001@10.0.0.2", 120'000}}), 2'000);
  ASSERT_EQ(second.bindings.size(), 2u);
  EXPECT_EQ(second.bindings[0].contact, "sip:2001@10.0.0.2");
  EXPECT_EQ(store.size(), 2u);

  // Same Call-ID, CSeq not higher: nothing changes.
  auto stale = store.update(registration("2001", phone, 1, {{"sip:2001@10.0.0.1", 0}}), 3'000);
  EXPECT_EQ(stale.outcome, RegistrationResult::Outcome::OutOfOrder);
  EXPECT_EQ(store.size(), 2u);

  auto removed = store.update(registration("2001", phone, 3, {{"sip:2001@10.0.0.1", 0}}), 3'000);
  EXPECT_EQ(removed.removed, 1u);
  EXPECT_FALSE(store.registeredFlow(phone, 3'000));
  EXPECT_TRUE(store.registeredFlow(laptop, 3'000));

  // Expiry: the binding is no longer returned, then swept.
  EXPECT_TRUE(store.lookup("2001", 122'000).empty());
  EXPECT_FALSE(store.registeredFlow(laptop, 123'000));
  EXPECT_EQ(store.expire(122'000).size(), 1u);
  EXPECT_EQ(store.size(), 0u);
}

TEST(LocalLocationStore, AFlowSharedByTwoUsersStaysUntilBothLeave) {
  LocalLocationStore store;
  net::Flow phone = flowFrom("2001:db8::7", 5060);  // one phone, two lines
  store.update(registration("2001", phone, 1, {{"sip:2001@[2001:db8::7]", 60'000}}), 0);
  store.update(registration("2002", phone, 1, {{"sip:2002@[2001:db8::7]", 60'000}}), 0);
  store.update(registration("2001", phone, 2, {{"sip:2001@[2001:db8::7]", 0}}), 0);
  EXPECT_TRUE(store.registeredFlow(phone, 0));
  auto ended = store.retain([](const Binding& b) { return b.user != "2002"; });
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].user, "2002");
  EXPECT_FALSE(store.registeredFlow(phone, 0));
}

TEST(LocalLocationStore, TooManyBindingsChangeNothing) {
  LocalLocationStore store;
  net::Flow phone = flowFrom("192.0.2.10", 5060);
  Registration r = registration("2001", phone, 1, {});
  r.max_bindings = 2;
  for (int i = 0; i < 3; ++i) r.contacts.push_back({"sip:2001@10.0.0." + std::to_string(i), 60'000});
  EXPECT_EQ(store.update(r, 0).outcome, RegistrationResult::Outcome::TooMany);
  EXPECT_EQ(store.size(), 0u);
  EXPECT_FALSE(store.registeredFlow(phone, 0));
  // Wildcard removal of everything, with the right CSeq.
  r.contacts.pop_back();
  EXPECT_EQ(store.update(r, 0).bindings.size(), 2u);
  Registration all = registration("2001", phone, 2, {});
  all.remove_all = true;
  EXPECT_EQ(store.update(all, 0).removed, 2u);
  EXPECT_EQ(store.size(), 0u);
}

}  // namespace
}  // namespace palisade::routing
