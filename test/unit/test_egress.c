/* test_egress.c: unit tests of address classification, CIDR allow-lists and the scheme rule. */
#include "unit.h"
#include "egress.h"

#include <arpa/inet.h>

/* Class of a textual address (IPv4 or IPv6); -1 when it does not parse. */
static int
class_of(const char *text)
{
	uint8_t		a[16];

	if (inet_pton(AF_INET, text, a) == 1)
		return (int) aos_cus_addr_classify(AOS_AF_INET4, a);
	if (inet_pton(AF_INET6, text, a) == 1)
		return (int) aos_cus_addr_classify(AOS_AF_INET6, a);
	return -1;
}

/* Whether the policy with allow-list text lets a textual address through. */
static bool
allowed(const char *list, const char *text)
{
	AosNetList nets;
	const char *why;
	uint8_t		a[16];

	if (!aos_cus_netlist_parse(list, &nets, &why))
		return false;
	if (inet_pton(AF_INET, text, a) == 1)
		return aos_cus_egress_address_allowed(&nets, AOS_AF_INET4, a);
	if (inet_pton(AF_INET6, text, a) == 1)
		return aos_cus_egress_address_allowed(&nets, AOS_AF_INET6, a);
	return false;
}

/* Every special IPv4 range, its edges and public neighbors. */
static void
test_classify_ipv4(void)
{
	CHECK(class_of("0.0.0.0") == AOS_ADDR_UNSPECIFIED);
	CHECK(class_of("0.255.255.255") == AOS_ADDR_UNSPECIFIED);
	CHECK(class_of("127.0.0.1") == AOS_ADDR_LOOPBACK);
	CHECK(class_of("127.255.255.254") == AOS_ADDR_LOOPBACK);
	CHECK(class_of("169.254.169.254") == AOS_ADDR_LINK_LOCAL);
	CHECK(class_of("169.254.0.0") == AOS_ADDR_LINK_LOCAL);
	CHECK(class_of("169.255.0.1") == AOS_ADDR_PUBLIC);
	CHECK(class_of("169.253.255.255") == AOS_ADDR_PUBLIC);
	CHECK(class_of("10.0.0.1") == AOS_ADDR_PRIVATE);
	CHECK(class_of("10.255.255.255") == AOS_ADDR_PRIVATE);
	CHECK(class_of("11.0.0.0") == AOS_ADDR_PUBLIC);
	CHECK(class_of("9.255.255.255") == AOS_ADDR_PUBLIC);
	CHECK(class_of("172.16.0.0") == AOS_ADDR_PRIVATE);
	CHECK(class_of("172.31.255.255") == AOS_ADDR_PRIVATE);
	CHECK(class_of("172.15.255.255") == AOS_ADDR_PUBLIC);
	CHECK(class_of("172.32.0.0") == AOS_ADDR_PUBLIC);
	CHECK(class_of("192.168.1.1") == AOS_ADDR_PRIVATE);
	CHECK(class_of("192.169.0.0") == AOS_ADDR_PUBLIC);
	CHECK(class_of("100.64.0.1") == AOS_ADDR_PRIVATE);
	CHECK(class_of("100.127.255.255") == AOS_ADDR_PRIVATE);
	CHECK(class_of("100.128.0.0") == AOS_ADDR_PUBLIC);
	CHECK(class_of("100.63.255.255") == AOS_ADDR_PUBLIC);
	CHECK(class_of("192.0.0.8") == AOS_ADDR_RESERVED);
	CHECK(class_of("192.0.2.1") == AOS_ADDR_RESERVED);
	CHECK(class_of("198.18.0.1") == AOS_ADDR_RESERVED);
	CHECK(class_of("198.19.255.255") == AOS_ADDR_RESERVED);
	CHECK(class_of("198.20.0.0") == AOS_ADDR_PUBLIC);
	CHECK(class_of("198.51.100.7") == AOS_ADDR_RESERVED);
	CHECK(class_of("203.0.113.9") == AOS_ADDR_RESERVED);
	CHECK(class_of("224.0.0.1") == AOS_ADDR_RESERVED);
	CHECK(class_of("239.255.255.255") == AOS_ADDR_RESERVED);
	CHECK(class_of("240.0.0.1") == AOS_ADDR_RESERVED);
	CHECK(class_of("255.255.255.255") == AOS_ADDR_RESERVED);
	CHECK(class_of("8.8.8.8") == AOS_ADDR_PUBLIC);
	CHECK(class_of("1.1.1.1") == AOS_ADDR_PUBLIC);
	CHECK(class_of("223.255.255.255") == AOS_ADDR_PUBLIC);
	CHECK(class_of("162.159.140.245") == AOS_ADDR_PUBLIC);
}

/* IPv6 ranges, and IPv4 carried inside IPv6 judged by the IPv4 address. */
static void
test_classify_ipv6(void)
{
	CHECK(class_of("::") == AOS_ADDR_UNSPECIFIED);
	CHECK(class_of("::1") == AOS_ADDR_LOOPBACK);
	CHECK(class_of("::2") == AOS_ADDR_UNSPECIFIED);	/* compatible 0.0.0.2 */
	CHECK(class_of("fe80::1") == AOS_ADDR_LINK_LOCAL);
	CHECK(class_of("febf:ffff::1") == AOS_ADDR_LINK_LOCAL);
	CHECK(class_of("fec0::1") == AOS_ADDR_PRIVATE);
	CHECK(class_of("fc00::1") == AOS_ADDR_PRIVATE);
	CHECK(class_of("fd12:3456::1") == AOS_ADDR_PRIVATE);
	CHECK(class_of("fbff:ffff::1") == AOS_ADDR_PUBLIC);
	CHECK(class_of("fe00::1") == AOS_ADDR_PUBLIC);
	CHECK(class_of("ff02::1") == AOS_ADDR_RESERVED);
	CHECK(class_of("2001:db8::1") == AOS_ADDR_RESERVED);
	CHECK(class_of("2001::1") == AOS_ADDR_RESERVED);
	CHECK(class_of("100::1") == AOS_ADDR_RESERVED);
	CHECK(class_of("100:0:0:1::1") == AOS_ADDR_PUBLIC);
	CHECK(class_of("2606:4700::6810:84e5") == AOS_ADDR_PUBLIC);
	CHECK(class_of("2a00:1450:4001::200e") == AOS_ADDR_PUBLIC);
	/* IPv4-mapped, compatible, NAT64 and 6to4 */
	CHECK(class_of("::ffff:127.0.0.1") == AOS_ADDR_LOOPBACK);
	CHECK(class_of("::ffff:7f00:1") == AOS_ADDR_LOOPBACK);
	CHECK(class_of("::ffff:169.254.169.254") == AOS_ADDR_LINK_LOCAL);
	CHECK(class_of("::ffff:10.1.2.3") == AOS_ADDR_PRIVATE);
	CHECK(class_of("::ffff:0.0.0.0") == AOS_ADDR_UNSPECIFIED);
	CHECK(class_of("::ffff:8.8.8.8") == AOS_ADDR_PUBLIC);
	CHECK(class_of("::127.0.0.1") == AOS_ADDR_LOOPBACK);
	CHECK(class_of("::8.8.8.8") == AOS_ADDR_PUBLIC);
	CHECK(class_of("64:ff9b::192.168.0.1") == AOS_ADDR_PRIVATE);
	CHECK(class_of("64:ff9b::8.8.8.8") == AOS_ADDR_PUBLIC);
	CHECK(class_of("64:ff9b:1::1") == AOS_ADDR_PRIVATE);
	CHECK(class_of("2002:7f00:1::") == AOS_ADDR_LOOPBACK);
	CHECK(class_of("2002:a9fe:a9fe::1") == AOS_ADDR_LINK_LOCAL);
	CHECK(class_of("2002:808:808::1") == AOS_ADDR_PUBLIC);
	/* ::ffff:0:0/96 neighbors are not mapped */
	CHECK(class_of("::fffe:7f00:1") == AOS_ADDR_PUBLIC);
	CHECK(class_of("0:0:0:0:0:1:ffff:7f00") == AOS_ADDR_PUBLIC);
}

/* Class names. */
static void
test_class_names(void)
{
	CHECK_STR(aos_cus_addr_class_name(AOS_ADDR_PUBLIC), "public");
	CHECK_STR(aos_cus_addr_class_name(AOS_ADDR_UNSPECIFIED), "unspecified");
	CHECK_STR(aos_cus_addr_class_name(AOS_ADDR_LOOPBACK), "loopback");
	CHECK_STR(aos_cus_addr_class_name(AOS_ADDR_LINK_LOCAL), "link-local");
	CHECK_STR(aos_cus_addr_class_name(AOS_ADDR_PRIVATE), "private");
	CHECK_STR(aos_cus_addr_class_name(AOS_ADDR_RESERVED), "reserved");
	CHECK(aos_cus_addr_class_name((AosAddrClass) 99) == NULL);
}

/* Allow-list syntax: separators, bare hosts, prefixes, and every refusal. */
static void
test_parse(void)
{
	AosNetList l;
	const char *why;
	char		many[2048];
	size_t		pos = 0;

	CHECK(aos_cus_netlist_parse("", &l, &why) && l.count == 0 && why == NULL);
	CHECK(aos_cus_netlist_parse(" , ,\t\n", &l, &why) && l.count == 0);
	CHECK(aos_cus_netlist_parse("127.0.0.1/32", &l, &why) && l.count == 1);
	CHECK(l.nets[0].family == AOS_AF_INET4 && l.nets[0].prefix == 32 && l.nets[0].addr[0] == 127 && l.nets[0].addr[3] == 1);
	CHECK(aos_cus_netlist_parse("127.0.0.1", &l, &why) && l.count == 1 && l.nets[0].prefix == 32);
	CHECK(aos_cus_netlist_parse("::1", &l, &why) && l.count == 1 && l.nets[0].family == AOS_AF_INET6 && l.nets[0].prefix == 128);
	CHECK(aos_cus_netlist_parse("10.0.0.0/8, 192.168.0.0/16 fd00::/8,::1/128", &l, &why) && l.count == 4);
	CHECK(l.nets[2].family == AOS_AF_INET6 && l.nets[2].prefix == 8 && l.nets[2].addr[0] == 0xfd);
	CHECK(aos_cus_netlist_parse("0.0.0.0/0", &l, &why) && l.count == 1 && l.nets[0].prefix == 0);
	CHECK(aos_cus_netlist_parse("::/0", &l, &why) && l.count == 1 && l.nets[0].prefix == 0);

	CHECK(!aos_cus_netlist_parse("localhost", &l, &why));
	CHECK_STR(why, "an entry is not an IPv4 or IPv6 address");
	CHECK(!aos_cus_netlist_parse("127.1", &l, &why));
	CHECK(!aos_cus_netlist_parse("256.0.0.1/32", &l, &why));
	CHECK(!aos_cus_netlist_parse("/8", &l, &why));
	CHECK(!aos_cus_netlist_parse("127.0.0.1/33", &l, &why));
	CHECK_STR(why, "a prefix length is not a number of bits within the address");
	CHECK(!aos_cus_netlist_parse("::1/129", &l, &why));
	CHECK(!aos_cus_netlist_parse("127.0.0.1/", &l, &why));
	CHECK(!aos_cus_netlist_parse("127.0.0.1/-1", &l, &why));
	CHECK(!aos_cus_netlist_parse("127.0.0.1/3x", &l, &why));
	CHECK(!aos_cus_netlist_parse("127.0.0.1/0032", &l, &why));
	CHECK(!aos_cus_netlist_parse("10.1.2.3/8", &l, &why));
	CHECK_STR(why, "an entry has bits set beyond its prefix length");
	CHECK(!aos_cus_netlist_parse("fe80::1/10", &l, &why));
	CHECK(!aos_cus_netlist_parse("127.0.0.1/32;rm", &l, &why));
	CHECK(!aos_cus_netlist_parse("0123456789012345678901234567890123456789012345678901234567890123456789", &l, &why));

	for (int i = 0; i < 65; i++)
		pos += (size_t) snprintf(many + pos, sizeof(many) - pos, "10.0.0.%d,", i);
	CHECK(!aos_cus_netlist_parse(many, &l, &why));
	CHECK_STR(why, "the list holds more than 64 networks");
	many[pos - strlen("10.0.0.64,")] = '\0';
	CHECK(aos_cus_netlist_parse(many, &l, &why) && l.count == 64);
}

/* Matching against prefixes of every length, per family. */
static void
test_contains(void)
{
	AosNetList l;
	const char *why;
	uint8_t		a[16];

	CHECK(aos_cus_netlist_parse("10.1.0.0/16, 172.16.5.128/25, fd00:1::/32", &l, &why));
	inet_pton(AF_INET, "10.1.255.255", a);
	CHECK(aos_cus_netlist_contains(&l, AOS_AF_INET4, a));
	inet_pton(AF_INET, "10.2.0.0", a);
	CHECK(!aos_cus_netlist_contains(&l, AOS_AF_INET4, a));
	inet_pton(AF_INET, "172.16.5.128", a);
	CHECK(aos_cus_netlist_contains(&l, AOS_AF_INET4, a));
	inet_pton(AF_INET, "172.16.5.127", a);
	CHECK(!aos_cus_netlist_contains(&l, AOS_AF_INET4, a));
	inet_pton(AF_INET6, "fd00:1:ffff::1", a);
	CHECK(aos_cus_netlist_contains(&l, AOS_AF_INET6, a));
	inet_pton(AF_INET6, "fd00:2::1", a);
	CHECK(!aos_cus_netlist_contains(&l, AOS_AF_INET6, a));
	/* an IPv4 network never matches an IPv6 address by its bytes */
	inet_pton(AF_INET6, "a01::", a);
	CHECK(!aos_cus_netlist_contains(&l, AOS_AF_INET6, a));
	CHECK(!aos_cus_netlist_contains(NULL, AOS_AF_INET4, a));
}

/* The policy: refused by default, public allowed, the operator's list lets special ranges through. */
static void
test_policy(void)
{
	static const char *const refused[] = {
		"127.0.0.1", "127.0.0.2", "0.0.0.0", "169.254.169.254", "10.0.0.1", "172.16.0.1", "192.168.0.1",
		"100.64.0.1", "224.0.0.1", "255.255.255.255", "::", "::1", "fe80::1", "fc00::1", "fd00::1",
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::10.0.0.1", "2002:7f00:1::1", "ff02::1"
	};

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		CHECK(!allowed("", refused[i]));
	CHECK(allowed("", "8.8.8.8"));
	CHECK(allowed("", "2606:4700::6810:84e5"));
	CHECK(allowed("", "::ffff:8.8.8.8"));

	CHECK(allowed("127.0.0.1/32", "127.0.0.1"));
	CHECK(!allowed("127.0.0.1/32", "127.0.0.2"));
	CHECK(!allowed("127.0.0.1/32", "::1"));
	CHECK(allowed("127.0.0.1/32", "::ffff:127.0.0.1"));	/* the carried IPv4 address is allowed */
	CHECK(!allowed("127.0.0.1/32", "169.254.169.254"));
	CHECK(allowed("::1", "::1"));
	CHECK(!allowed("::1", "127.0.0.1"));
	CHECK(allowed("10.0.0.0/8", "10.20.30.40"));
	CHECK(!allowed("10.0.0.0/8", "172.16.0.1"));
	CHECK(allowed("0.0.0.0/0", "169.254.169.254"));
	CHECK(allowed("::ffff:127.0.0.0/104", "::ffff:127.0.0.9"));
	CHECK(!aos_cus_egress_address_allowed(NULL, (AosAddrFamily) 0, (const uint8_t *) "\x08\x08\x08\x08"));
}

/* https always, http only when allowed, nothing else. */
static void
test_scheme(void)
{
	CHECK(aos_cus_egress_check_scheme("https://api.openai.com/v1/models", false) == NULL);
	CHECK(aos_cus_egress_check_scheme("HTTPS://api.openai.com/v1/models", false) == NULL);
	CHECK(aos_cus_egress_check_scheme("http://127.0.0.1:8080/v1/models", false) != NULL);
	CHECK(aos_cus_egress_check_scheme("http://127.0.0.1:8080/v1/models", true) == NULL);
	CHECK(aos_cus_egress_check_scheme("ftp://x/", true) != NULL);
	CHECK(aos_cus_egress_check_scheme("file:///etc/passwd", true) != NULL);
	CHECK(aos_cus_egress_check_scheme("gopher://x/", true) != NULL);
	CHECK(aos_cus_egress_check_scheme("httpx://x/", true) != NULL);
	CHECK(aos_cus_egress_check_scheme("https:/x", true) != NULL);
	CHECK(aos_cus_egress_check_scheme("", true) != NULL);
	CHECK(aos_cus_egress_check_scheme(NULL, true) != NULL);
}

int
main(void)
{
	test_classify_ipv4();
	test_classify_ipv6();
	test_class_names();
	test_parse();
	test_contains();
	test_policy();
	test_scheme();
	return UNIT_DONE();
}
