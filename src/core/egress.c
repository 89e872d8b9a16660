/*
 * egress.c: address classification, CIDR allow-lists and the scheme rule of
 * the egress policy (see egress.h). Pure C; the fmgr glue applies it to
 * libcurl's connections.
 */
#include "egress.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

/* A special-purpose range of one family and the class it gives. */
typedef struct SpecialNet
{
	uint8_t		addr[16];
	int			prefix;
	AosAddrClass cls;
} SpecialNet;

static const SpecialNet special4[] = {
	{{0, 0, 0, 0}, 8, AOS_ADDR_UNSPECIFIED},
	{{10, 0, 0, 0}, 8, AOS_ADDR_PRIVATE},
	{{100, 64, 0, 0}, 10, AOS_ADDR_PRIVATE},	/* shared address space (carrier-grade NAT) */
	{{127, 0, 0, 0}, 8, AOS_ADDR_LOOPBACK},
	{{169, 254, 0, 0}, 16, AOS_ADDR_LINK_LOCAL},
	{{172, 16, 0, 0}, 12, AOS_ADDR_PRIVATE},
	{{192, 0, 0, 0}, 24, AOS_ADDR_RESERVED},	/* IETF protocol assignments */
	{{192, 0, 2, 0}, 24, AOS_ADDR_RESERVED},	/* documentation */
	{{192, 88, 99, 0}, 24, AOS_ADDR_RESERVED},	/* 6to4 relay anycast */
	{{192, 168, 0, 0}, 16, AOS_ADDR_PRIVATE},
	{{198, 18, 0, 0}, 15, AOS_ADDR_RESERVED},	/* benchmarking */
	{{198, 51, 100, 0}, 24, AOS_ADDR_RESERVED},	/* documentation */
	{{203, 0, 113, 0}, 24, AOS_ADDR_RESERVED},	/* documentation */
	{{224, 0, 0, 0}, 4, AOS_ADDR_RESERVED},	/* multicast */
	{{240, 0, 0, 0}, 4, AOS_ADDR_RESERVED},	/* reserved, broadcast */
};

static const SpecialNet special6[] = {
	{{0}, 128, AOS_ADDR_UNSPECIFIED},
	{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, AOS_ADDR_LOOPBACK},
	{{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, AOS_ADDR_PRIVATE},	/* local-use NAT64 */
	{{0x01, 0x00}, 64, AOS_ADDR_RESERVED},	/* discard-only */
	{{0x20, 0x01, 0x00, 0x00}, 23, AOS_ADDR_RESERVED},	/* IETF protocol assignments (Teredo, ...) */
	{{0x20, 0x01, 0x0d, 0xb8}, 32, AOS_ADDR_RESERVED},	/* documentation */
	{{0xfc}, 7, AOS_ADDR_PRIVATE},	/* unique local */
	{{0xfe, 0x80}, 10, AOS_ADDR_LINK_LOCAL},
	{{0xfe, 0xc0}, 10, AOS_ADDR_PRIVATE},	/* site-local (deprecated) */
	{{0xff}, 8, AOS_ADDR_RESERVED},	/* multicast */
};

static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const uint8_t compat_prefix[12] = {0};
static const uint8_t nat64_prefix[12] = {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};

/* Bytes of an address of the family. */
static size_t
addr_len(AosAddrFamily family)
{
	return family == AOS_AF_INET4 ? 4 : 16;
}

/* True when the first prefix bits of a and b agree. */
static bool
prefix_match(const uint8_t *a, const uint8_t *b, int prefix)
{
	int			whole = prefix / 8;
	int			rest = prefix % 8;

	if (memcmp(a, b, (size_t) whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[whole] ^ b[whole]) & (uint8_t) (0xff << (8 - rest))) == 0;
}

/*
 * The IPv4 address an IPv6 address carries (mapped ::ffff:a.b.c.d, compatible
 * ::a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4 2002:aabb:ccdd::); false when none.
 * :: and ::1 carry none: they are IPv6's own unspecified and loopback.
 */
static bool
embedded_ipv4(const uint8_t *addr6, uint8_t *out4)
{
	if (memcmp(addr6, mapped_prefix, 12) == 0 || memcmp(addr6, nat64_prefix, 12) == 0)
	{
		memcpy(out4, addr6 + 12, 4);
		return true;
	}
	if (memcmp(addr6, compat_prefix, 12) == 0)
	{
		static const uint8_t zero[4] = {0};
		static const uint8_t one[4] = {0, 0, 0, 1};

		if (memcmp(addr6 + 12, zero, 4) == 0 || memcmp(addr6 + 12, one, 4) == 0)
			return false;
		memcpy(out4, addr6 + 12, 4);
		return true;
	}
	if (addr6[0] == 0x20 && addr6[1] == 0x02)
	{
		memcpy(out4, addr6 + 2, 4);
		return true;
	}
	return false;
}

/* Class of an address. */
AosAddrClass
aos_cus_addr_classify(AosAddrFamily family, const uint8_t *addr)
{
	uint8_t		v4[4];
	const SpecialNet *table = special4;
	size_t		n = sizeof(special4) / sizeof(special4[0]);

	if (family == AOS_AF_INET6)
	{
		if (embedded_ipv4(addr, v4))
			return aos_cus_addr_classify(AOS_AF_INET4, v4);
		table = special6;
		n = sizeof(special6) / sizeof(special6[0]);
	}
	for (size_t i = 0; i < n; i++)
		if (prefix_match(addr, table[i].addr, table[i].prefix))
			return table[i].cls;
	return AOS_ADDR_PUBLIC;
}

/* Name of a class. */
const char *
aos_cus_addr_class_name(AosAddrClass cls)
{
	switch (cls)
	{
		case AOS_ADDR_PUBLIC:
			return "public";
		case AOS_ADDR_UNSPECIFIED:
			return "unspecified";
		case AOS_ADDR_LOOPBACK:
			return "loopback";
		case AOS_ADDR_LINK_LOCAL:
			return "link-local";
		case AOS_ADDR_PRIVATE:
			return "private";
		case AOS_ADDR_RESERVED:
			return "reserved";
	}
	return NULL;
}

/* Parse one "address[/prefix]" token of len bytes into net. */
static bool
parse_net(const char *token, size_t len, AosNet *net, const char **why)
{
	char		buf[64];
	const char *slash = memchr(token, '/', len);
	size_t		addr_part = slash ? (size_t) (slash - token) : len;
	int			max;

	if (addr_part == 0 || addr_part >= sizeof(buf))
	{
		*why = "an entry is not an IPv4 or IPv6 address";
		return false;
	}
	memcpy(buf, token, addr_part);
	buf[addr_part] = '\0';
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, buf, net->addr) == 1)
		net->family = AOS_AF_INET4;
	else if (inet_pton(AF_INET6, buf, net->addr) == 1)
		net->family = AOS_AF_INET6;
	else
	{
		*why = "an entry is not an IPv4 or IPv6 address";
		return false;
	}
	max = (int) addr_len(net->family) * 8;
	net->prefix = max;
	if (slash != NULL)
	{
		const char *digits = slash + 1;
		size_t		ndigits = len - addr_part - 1;
		int			prefix = 0;

		if (ndigits == 0 || ndigits > 3)
		{
			*why = "a prefix length is not a number of bits within the address";
			return false;
		}
		for (size_t i = 0; i < ndigits; i++)
		{
			if (digits[i] < '0' || digits[i] > '9')
			{
				*why = "a prefix length is not a number of bits within the address";
				return false;
			}
			prefix = prefix * 10 + (digits[i] - '0');
		}
		if (prefix > max)
		{
			*why = "a prefix length is not a number of bits within the address";
			return false;
		}
		net->prefix = prefix;
	}
	/* Host bits must be zero: "10.1.2.3/8" is most likely a typing error. */
	for (int bit = net->prefix; bit < max; bit++)
		if (net->addr[bit / 8] & (0x80 >> (bit % 8)))
		{
			*why = "an entry has bits set beyond its prefix length";
			return false;
		}
	return true;
}

/* Parse a list of networks. */
bool
aos_cus_netlist_parse(const char *text, AosNetList *out, const char **why)
{
	const char *p = text;

	out->count = 0;
	*why = NULL;
	while (*p != '\0')
	{
		size_t		len;

		p += strspn(p, ", \t\r\n");
		if (*p == '\0')
			break;
		len = strcspn(p, ", \t\r\n");
		if (out->count == AOS_EGRESS_MAX_NETS)
		{
			*why = "the list holds more than 64 networks";
			return false;
		}
		if (!parse_net(p, len, &out->nets[out->count], why))
			return false;
		out->count++;
		p += len;
	}
	return true;
}

/* True when some network of list contains the address. */
bool
aos_cus_netlist_contains(const AosNetList *list, AosAddrFamily family, const uint8_t *addr)
{
	for (int i = 0; list != NULL && i < list->count; i++)
		if (list->nets[i].family == family && prefix_match(addr, list->nets[i].addr, list->nets[i].prefix))
			return true;
	return false;
}

/* Public addresses pass; others only when the allow-list holds them (or the IPv4 address they carry). */
bool
aos_cus_egress_address_allowed(const AosNetList *allowed, AosAddrFamily family, const uint8_t *addr)
{
	uint8_t		v4[4];

	if (family != AOS_AF_INET4 && family != AOS_AF_INET6)
		return false;
	if (aos_cus_addr_classify(family, addr) == AOS_ADDR_PUBLIC)
		return true;
	if (aos_cus_netlist_contains(allowed, family, addr))
		return true;
	return family == AOS_AF_INET6 && embedded_ipv4(addr, v4) && aos_cus_netlist_contains(allowed, AOS_AF_INET4, v4);
}

/* https always; http only when allowed; nothing else. */
const char *
aos_cus_egress_check_scheme(const char *url, bool allow_http)
{
	if (url != NULL && strncasecmp(url, "https://", 8) == 0)
		return NULL;
	if (url != NULL && strncasecmp(url, "http://", 7) == 0)
		return allow_http ? NULL : "the URL must use https: plain http is not allowed by the egress policy (aos_cus.egress_allow_http)";
	return "the URL must use https";
}
