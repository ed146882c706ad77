#include "tests/fuzz/sip_checks.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace palisade::fuzz {

void require(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "invariant violated: %s\n", what);
  std::abort();
}

bool within(std::string_view part, std::string_view whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

namespace {

void checkUri(std::string_view text) {
  sip::Uri uri;
  if (!sip::parseUri(text, uri)) return;
  require(within(uri.scheme, text) && within(uri.user, text) && within(uri.host, text) &&
              within(uri.params, text) && within(uri.headers, text),
          "Uri views inside the text");
  require(!uri.scheme.empty(), "Uri has a scheme");
  if (uri.isSip()) require(!uri.host.empty(), "SIP URI has a host");
  (void)sip::paramValue(uri.params, "transport");
  (void)sip::paramValue(uri.params, "lr");
}

void checkNameAddr(std::string_view text) {
  sip::NameAddr na;
  if (!sip::parseNameAddr(text, na)) return;
  require(within(na.display, text) && within(na.uri, text) && within(na.params, text) && within(na.tag, text),
          "NameAddr views inside the text");
  require(!na.uri.empty(), "NameAddr has a URI");
  checkUri(na.uri);
}

void checkVias(std::string_view text) {
  std::string_view rest = text;
  for (int i = 0; i < 1024 && !rest.empty(); ++i) {
    sip::Via via;
    std::string_view next;
    if (!sip::parseVia(rest, via, next)) return;
    require(within(via.transport, text) && within(via.host, text) && within(via.branch, text) &&
                within(via.received, text) && within(via.rport, text) && within(via.params, text) &&
                within(via.text, text),
            "Via views inside the text");
    require(!via.host.empty() && !via.transport.empty() && !via.text.empty(), "Via has transport and host");
    require(within(next, rest) && next.size() < rest.size(), "parseVia makes progress");
    rest = next;
  }
}

void checkValue(std::string_view value) {
  checkUri(value);
  checkNameAddr(value);
  checkVias(value);
  std::vector<std::string_view> items;
  if (sip::splitList(value, items)) {
    for (std::string_view item : items) {
      require(within(item, value) && !item.empty(), "list elements inside the value");
      checkNameAddr(item);
      checkUri(item);
    }
  }
  for (std::string_view name : {"tag", "branch", "received", "rport", "expires", "q", "lr"}) {
    bool found = false;
    std::string_view v = sip::paramValue(value, name, &found);
    require(within(v, value), "paramValue inside the value");
    require(found || v.empty(), "absent parameter has no value");
  }
  std::uint64_t number = 0;
  (void)sip::parseUnsigned(value, 0xFFFFFFFFull, number);
  require(within(sip::trimLws(value), value), "trimLws inside the value");
}

}  // namespace

void exerciseMessage(const sip::Message& m) {
  std::string_view raw = m.raw();
  require(!(m.ok() && m.dropped()), "ok and dropped");
  require(m.ok() == (m.fault().status == 0 && !m.dropped()), "ok() matches fault and dropped");
  if (m.dropped()) require(m.fault().status == 0, "a dropped message has no answer");
  if (m.fault().status != 0) require(m.isRequest(), "only requests are answered");
  require(within(m.methodText(), raw) && within(m.requestUri(), raw) && within(m.reasonPhrase(), raw) &&
              within(m.body(), raw) && within(m.callId(), raw) && within(m.cseqMethodText(), raw),
          "message views inside the bytes");
  require(within(m.fromTag(), raw) && within(m.toTag(), raw) && within(m.topVia().text, raw) &&
              within(m.topVia().branch, raw),
          "tag and Via views inside the bytes");
  if (m.isRequest()) {
    require(!m.methodText().empty(), "a request has a method");
    checkUri(m.requestUri());
  } else if (!m.dropped()) {
    require(m.statusCode() >= 100 && m.statusCode() <= 699, "status code in range");
  }
  for (const sip::HeaderField& h : m.headers()) {
    require(h.begin < h.end && h.end <= raw.size(), "field offsets inside the bytes");
    require(within(h.name, raw) && within(h.value, raw), "field views inside the bytes");
    require(within(h.name, raw.substr(h.begin, h.end - h.begin)) &&
                within(h.value, raw.substr(h.begin, h.end - h.begin)),
            "field views inside the field");
    require(!h.name.empty() && sip::headerIdFromName(h.name) == h.id, "field id matches its name");
    require(m.find(h.id) != nullptr && m.count(h.id) >= 1, "find and count see every field");
    checkValue(h.value);
  }
  sip::NameAddr contact;
  if (m.firstContact(contact)) checkUri(contact.uri);
  if (m.ok()) {
    require(m.viaCount() >= 1 && !m.topVia().host.empty(), "an accepted message has a top Via");
    require(!m.callId().empty(), "an accepted message has a Call-ID");
    require(m.find(sip::Hdr::From) && m.find(sip::Hdr::To) && m.find(sip::Hdr::CSeq), "mandatory fields");
    if (m.isRequest()) {
      require(m.cseqMethodText() == m.methodText(), "CSeq method matches the request");
      require(m.maxForwards() >= -1 && m.maxForwards() <= 255, "Max-Forwards range");
    }
  }
  if (m.fault().status != 0 && m.viaCount() > 0)
    require(!m.topVia().text.empty(), "answerable fault has a Via");
}

}  // namespace palisade::fuzz
