/*
 * egress.h: the egress policy of outbound requests, without Postgres headers.
 *
 * Tenant-supplied URLs may only reach public addresses: loopback, link-local,
 * private, unspecified and the other special-purpose ranges are refused unless
 * an operator-set CIDR list allows them. IPv4 embedded in IPv6 (mapped,
 * compatible, NAT64) is judged by its IPv4 address. The URL scheme must be
 * https unless the operator allows http. This module allocates nothing.
 */
#ifndef AOS_CUS_EGRESS_H
#define AOS_CUS_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most networks an allow-list holds. */
#define AOS_EGRESS_MAX_NETS 64

/* The one outcome of a probe to a refused target: the same for every port and address. */
#define AOS_EGRESS_REFUSED_ERROR "egress refused: the target address is not allowed by the egress policy"

/* Address families, as the policy sees them. */
typedef enum AosAddrFamily
{
	AOS_AF_INET4 = 4,
	AOS_AF_INET6 = 6
} AosAddrFamily;

/* Why an address is special (AOS_ADDR_PUBLIC: it is not). */
typedef enum AosAddrClass
{
	AOS_ADDR_PUBLIC = 0,
	AOS_ADDR_UNSPECIFIED,		/* 0.0.0.0/8, ::/128 */
	AOS_ADDR_LOOPBACK,			/* 127.0.0.0/8, ::1/128 */
	AOS_ADDR_LINK_LOCAL,		/* 169.254.0.0/16, fe80::/10 */
	AOS_ADDR_PRIVATE,			/* 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, fec0::/10 */
	AOS_ADDR_RESERVED			/* multicast, broadcast, documentation, benchmarking, 240/4, ... */
} AosAddrClass;

/* One network: family, address bytes (4 or 16 used) and prefix length. */
typedef struct AosNet
{
	AosAddrFamily family;
	uint8_t		addr[16];
	int			prefix;
} AosNet;

/* An operator allow-list of networks. */
typedef struct AosNetList
{
	int			count;
	AosNet		nets[AOS_EGRESS_MAX_NETS];
} AosNetList;

/* Class of an address (4 bytes for AOS_AF_INET4, 16 for AOS_AF_INET6). */
AosAddrClass aos_cus_addr_classify(AosAddrFamily family, const uint8_t *addr);

/* Name of a class ("public", "unspecified", "loopback", "link-local", "private", "reserved"). */
const char *aos_cus_addr_class_name(AosAddrClass cls);

/*
 * Parse a comma- or space-separated list of CIDR networks ("127.0.0.1/32, fd00::/8";
 * a bare address is a host network). Host bits must be zero. On failure returns
 * false and sets *why to a fixed English reason.
 */
bool		aos_cus_netlist_parse(const char *text, AosNetList *out, const char **why);

/* True when some network of list contains the address. */
bool		aos_cus_netlist_contains(const AosNetList *list, AosAddrFamily family, const uint8_t *addr);

/* True when the policy lets a tenant-supplied URL connect to the address (public, or in allowed). */
bool		aos_cus_egress_address_allowed(const AosNetList *allowed, AosAddrFamily family, const uint8_t *addr);

/* NULL when the URL's scheme is allowed (https; http too when allow_http), else why not. */
const char *aos_cus_egress_check_scheme(const char *url, bool allow_http);

#endif
