/* token_estimate.c: vocabulary-free token estimates (see token_estimate.h). */
#include "token_estimate.h"

#include <stdbool.h>
#include <string.h>

/* True when needle occurs in hay[0..len), ASCII case-insensitively. */
static bool
contains(const char *hay, size_t len, const char *needle)
{
	size_t		n = strlen(needle);

	for (size_t i = 0; i + n <= len; i++)
	{
		size_t		j = 0;

		while (j < n && (hay[i + j] | 0x20) == needle[j])
			j++;
		if (j == n)
			return true;
	}
	return false;
}

/* Family of a model name. */
AosTokenizer
aos_cus_tokenizer_for_model(const char *model, size_t len)
{
	if (model == NULL)
		return AOS_TOKENIZER_CHARS4;
	if (contains(model, len, "claude"))
		return AOS_TOKENIZER_ANTHROPIC;
	if (contains(model, len, "gemini") || contains(model, len, "gemma"))
		return AOS_TOKENIZER_GEMINI;
	if (contains(model, len, "gpt") || contains(model, len, "davinci") || contains(model, len, "babbage") ||
		contains(model, len, "text-embedding") || (len >= 2 && (model[0] | 0x20) == 'o' && model[1] >= '1' && model[1] <= '9'))
		return AOS_TOKENIZER_OPENAI;
	return AOS_TOKENIZER_CHARS4;
}

/* Length in bytes of the UTF-8 sequence starting with byte b (1 for invalid lead bytes). */
static size_t
utf8_len(unsigned char b)
{
	if (b >= 0xF0)
		return 4;
	if (b >= 0xE0)
		return 3;
	if (b >= 0xC0)
		return 2;
	return 1;
}

/* Piece classes of the pre-tokenizer. */
typedef enum Piece
{
	PIECE_LETTER, PIECE_DIGIT, PIECE_SPACE, PIECE_NEWLINE, PIECE_PUNCT, PIECE_WIDE
} Piece;

/* Class of the character at p (lead byte b, sequence length n). */
static Piece
piece_of(const unsigned char *p, size_t n)
{
	unsigned char b = p[0];

	if (n == 1)
	{
		if ((b | 0x20) >= 'a' && (b | 0x20) <= 'z')
			return PIECE_LETTER;
		if (b >= '0' && b <= '9')
			return PIECE_DIGIT;
		if (b == '\n' || b == '\r')
			return PIECE_NEWLINE;
		if (b == ' ' || b == '\t')
			return PIECE_SPACE;
		return PIECE_PUNCT;
	}
	/* Three-byte sequences from U+2E80 (CJK, kana, hangul) and four-byte ones (emoji) are wide. */
	if (n >= 4 || (n == 3 && (b > 0xE2 || (b == 0xE2 && p[1] >= 0xBA))))
		return PIECE_WIDE;
	return PIECE_LETTER;
}

/* Estimated tokens of text for a family. */
int64_t
aos_cus_token_estimate(const char *text, size_t len, AosTokenizer family)
{
	const unsigned char *s = (const unsigned char *) text;
	size_t		i = 0;
	int64_t		chars = 0;
	int64_t		tokens = 0;		/* in 1/100 of a token */

	if (family == AOS_TOKENIZER_CHARS4)
	{
		for (size_t k = 0; k < len; k++)
			chars += (s[k] & 0xC0) != 0x80;
		return (chars + 3) / 4;
	}
	while (i < len)
	{
		size_t		n = utf8_len(s[i]);
		Piece		kind;
		int64_t		run = 0;

		if (i + n > len)
			n = len - i;
		kind = piece_of(s + i, n);
		/* One space before a word, number or punctuation belongs to that piece, as does one punctuation mark before a word. */
		if (kind == PIECE_SPACE && i + 1 < len && s[i + 1] != ' ' && s[i + 1] != '\t' &&
			s[i + 1] != '\n' && s[i + 1] != '\r')
		{
			i++;
			continue;
		}
		if (kind == PIECE_PUNCT && i + 1 < len && piece_of(s + i + 1, utf8_len(s[i + 1])) == PIECE_LETTER)
		{
			i++;
			continue;
		}
		while (i < len)
		{
			size_t		m = utf8_len(s[i]);

			if (i + m > len)
				m = len - i;
			if (piece_of(s + i, m) != kind)
				break;
			/* Non-ASCII letters cost about twice an ASCII one. */
			run += (kind == PIECE_LETTER && m > 1) ? 2 : 1;
			i += m;
			if (kind == PIECE_PUNCT && run == 2)
				break;
		}
		switch (kind)
		{
			case PIECE_LETTER:
				/* Common words are one token; long ones split every ~6 letters. */
				tokens += run <= 7 ? 100 : 100 + (run - 7) * 100 / 6;
				break;
			case PIECE_DIGIT:
				tokens += (run + 2) / 3 * 100;
				break;
			case PIECE_WIDE:
				tokens += run * 100;
				break;
			default:
				tokens += 100;
				break;
		}
	}
	/* Claude's tokenizer yields more tokens than OpenAI's o200k for the same text. */
	if (family == AOS_TOKENIZER_ANTHROPIC)
		tokens = tokens * 115 / 100;
	return (tokens + 99) / 100;
}
