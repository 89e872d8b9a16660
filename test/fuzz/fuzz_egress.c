/*
 * fuzz_egress.c: libFuzzer target for the egress allow-list parser and the address policy.
 * Every accepted list holds at most 64 networks with prefixes within their family and no host
 * bits set; each network contains its own address; no input may crash or read out of bounds.
 */
#include "egress.h"

#include <stdlib.h>
#include <string.h>

/* Abort (a finding) when cond is false. */
#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

/* One input: parse it as a list, check every network, classify the input's first 16 bytes as addresses. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text = malloc(size + 1);
	AosNetList	list;
	const char *why;
	uint8_t		addr[16] = {0};

	memcpy(text, data, size);
	text[size] = '\0';
	if (aos_cus_netlist_parse(text, &list, &why))
	{
		REQUIRE(list.count >= 0 && list.count <= AOS_EGRESS_MAX_NETS);
		for (int i = 0; i < list.count; i++)
		{
			const AosNet *n = &list.nets[i];

			REQUIRE(n->family == AOS_AF_INET4 || n->family == AOS_AF_INET6);
			REQUIRE(n->prefix >= 0 && n->prefix <= (n->family == AOS_AF_INET4 ? 32 : 128));
			REQUIRE(aos_cus_netlist_contains(&list, n->family, n->addr));
			REQUIRE(aos_cus_egress_address_allowed(&list, n->family, n->addr));
		}
	}
	else
		REQUIRE(why != NULL);
	memcpy(addr, data, size < 16 ? size : 16);
	REQUIRE(aos_cus_addr_class_name(aos_cus_addr_classify(AOS_AF_INET4, addr)) != NULL);
	REQUIRE(aos_cus_addr_class_name(aos_cus_addr_classify(AOS_AF_INET6, addr)) != NULL);
	REQUIRE(aos_cus_egress_address_allowed(NULL, AOS_AF_INET6, addr) ==
			(aos_cus_addr_classify(AOS_AF_INET6, addr) == AOS_ADDR_PUBLIC));
	(void) aos_cus_egress_check_scheme(text, size % 2 == 0);
	free(text);
	return 0;
}
