/* alias: the pure part — normalising a Pakistani mobile number or a CNIC to
 * its one canonical form and refusing everything else, masking a holder's
 * name by characters (Urdu too) and an alias for a log line, checking a
 * name from a peer; and the transfer check of creditor_alias (FF01 rules,
 * fingerprint stable for transfers without one). */
#include "alias.h"
#include "check.h"
#include "transfer.h"

static void norm_ok(const char *in, const char *want, Sikka__V1__AliasType type)
{
    char out[ALIAS_MAX + 1], err[200];
    Sikka__V1__AliasType got;
    int rc = alias_normalize(in, SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_UNSPECIFIED, out, &got, err,
                             sizeof(err));
    CHECK(rc == 0, "\"%s\": %s", in, err);
    CHECK_STR(out, want);
    CHECK_INT(got, type);
    CHECK_INT(alias_type_of(out), type);
}

static void norm_bad(const char *in)
{
    char out[ALIAS_MAX + 1], err[200];
    Sikka__V1__AliasType got;
    CHECK(alias_normalize(in, SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_UNSPECIFIED, out, &got, err,
                          sizeof(err)) != 0,
          "\"%s\" accepted", in);
    CHECK(strstr(err, "not a Pakistani mobile number") != NULL, "%s", err);
}

static void mask(const char *name, const char *want)
{
    char out[ALIAS_MASKED_MAX + 1];
    alias_mask_name(name, out, sizeof(out));
    CHECK_STR(out, want);
}

int main(void)
{
    TEST_STEP("the three forms of a mobile number are one alias");
    norm_ok("03001234567", "923001234567", SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_MOBILE);
    norm_ok("+923001234567", "923001234567", SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_MOBILE);
    norm_ok("923001234567", "923001234567", SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_MOBILE);
    norm_ok("03459876543", "923459876543", SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_MOBILE);

    TEST_STEP("a CNIC, bare or with its dashes");
    norm_ok("3520212345671", "3520212345671", SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_CNIC);
    norm_ok("35202-1234567-1", "3520212345671", SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_CNIC);

    TEST_STEP("everything else is refused, saying what is accepted");
    const char *bad[] = {"",
                         "0300123456",     /* 10 digits */
                         "030012345678",   /* 12 digits starting 0 */
                         "04001234567",    /* not a mobile prefix */
                         "+9230012345678", /* one digit too many */
                         "+92300123456",   /* one too few */
                         "+913001234567",  /* another country */
                         "00923001234567",
                         "92 3001234567",
                         "0300-1234567",
                         "0300 1234567",
                         "923001234567 ",
                         " 03001234567",
                         "O3001234567",
                         "٠٣٠٠١٢٣٤٥٦٧", /* Arabic-Indic digits */
                         "35202-12345671",
                         "3520-21234567-1",
                         "352021234567-1",
                         "+3520212345671",
                         "35202_1234567_1",
                         "12345678901234"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        norm_bad(bad[i]);

    TEST_STEP("a stated type must match the shape");
    char out[ALIAS_MAX + 1], err[200];
    Sikka__V1__AliasType got;
    CHECK(alias_normalize("03001234567", SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_MOBILE, out, &got, err,
                          sizeof(err)) == 0);
    CHECK(alias_normalize("03001234567", SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_CNIC, out, &got, err,
                          sizeof(err)) != 0);
    CHECK(strstr(err, "is a mobile number, not the CNIC") != NULL, "%s", err);
    CHECK(alias_normalize("3520212345671", SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_MOBILE, out, &got, err,
                          sizeof(err)) != 0);
    CHECK(alias_normalize("3520212345671", (Sikka__V1__AliasType)9, out, &got, err, sizeof(err)) !=
          0);
    CHECK_STR(alias_type_name(SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_MOBILE), "mobile");
    CHECK_STR(alias_type_name(SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_CNIC), "cnic");
    CHECK_STR(alias_type_name(SIKKA__V1__ALIAS_TYPE__ALIAS_TYPE_UNSPECIFIED), "");

    TEST_STEP("masking: first character of each word and ***, length hidden");
    mask("Muhammad Ali Khan", "M*** A*** K***");
    mask("M Ali Khan", "M*** A*** K***");
    mask("  Muhammad   Ali\tKhan  ", "M*** A*** K***");
    mask("Ayesha", "A***");
    mask("", "");
    mask("   ", "");
    /* Urdu: a character is two bytes; never cut inside one */
    mask("\xd8\xb9\xd9\x84\xdb\x8c \xd8\xae\xd8\xa7\xd9\x86", "\xd8\xb9*** \xd8\xae***");
    /* four-byte characters */
    mask("\xf0\x9f\x98\x80x y", "\xf0\x9f\x98\x80*** y***");
    /* at most ALIAS_MASK_WORDS words, then " ..." */
    mask("A B C D E F G H", "A*** B*** C*** D*** E*** F*** ...");
    /* a long name of long four-byte words fits the buffer */
    char longname[800] = "";
    for (int i = 0; i < 140; i++)
        strcat(longname, i % 2 ? " " : "\xf0\x9f\x98\x80");
    char masked[ALIAS_MASKED_MAX + 1];
    alias_mask_name(longname, masked, sizeof(masked));
    CHECK(strlen(masked) <= ALIAS_MASKED_MAX);
    CHECK(text_valid_utf8(masked, strlen(masked)));
    /* a small buffer: whole words only, still terminated */
    char small[12];
    alias_mask_name("Muhammad Ali Khan", small, sizeof(small));
    CHECK_STR(small, "M*** A***");

    TEST_STEP("an alias in a log line keeps its last four digits");
    char m[32];
    CHECK_STR(alias_mask("923001234567", m, sizeof(m)), "********4567");

    TEST_STEP("a holder's name from a peer");
    CHECK(alias_check_name("name", "Muhammad Ali Khan", err, sizeof(err)) == 0, "%s", err);
    CHECK(alias_check_name("name", "", err, sizeof(err)) != 0);
    CHECK(alias_check_name("name", "   ", err, sizeof(err)) != 0);
    CHECK(strstr(err, "blank") != NULL);
    CHECK(alias_check_name("name", "Ali\x01Khan", err, sizeof(err)) != 0);
    CHECK(alias_check_name("name", "Ali\xc3\x28", err, sizeof(err)) != 0);
    char name140[600] = "", name141[700];
    for (int i = 0; i < 140; i++)
        strcat(name140, "\xda\xa9"); /* 140 Urdu letters: 280 bytes, allowed */
    CHECK(alias_check_name("name", name140, err, sizeof(err)) == 0, "%s", err);
    snprintf(name141, sizeof(name141), "%sx", name140);
    CHECK(alias_check_name("name", name141, err, sizeof(err)) != 0);
    CHECK(strstr(err, "at most 140 characters") != NULL, "%s", err);

    TEST_STEP("a transfer by alias: checked and normalised; agent and account must be empty");
    Sikka__V1__CreditTransfer ct = SIKKA__V1__CREDIT_TRANSFER__INIT;
    ct.msg_id = "M1";
    ct.end_to_end_id = "E1";
    ct.debtor_agent = "JAZZ";
    ct.debtor_account = "A1";
    ct.creditor_alias = "+923001234567";
    ct.amount = 100;
    ct.currency = "PKR";
    ct.purpose = SIKKA__V1__PURPOSE__P2P;
    static struct transfer t, t2;
    char reason[5], text[300];
    CHECK(transfer_from_credit_transfer(&t, &ct, "JAZZ", reason, text, sizeof(text)) == 0, "%s",
          text);
    CHECK_STR(t.creditor_alias, "923001234567");
    CHECK_STR(t.payee, "");
    CHECK_STR(t.creditor_account, "");
    /* the same payee in another form is the same request */
    ct.creditor_alias = "03001234567";
    CHECK(transfer_from_credit_transfer(&t2, &ct, "JAZZ", reason, text, sizeof(text)) == 0);
    uint8_t fp1[TRANSFER_FP_LEN], fp2[TRANSFER_FP_LEN];
    transfer_fingerprint(&t, fp1);
    transfer_fingerprint(&t2, fp2);
    CHECK(memcmp(fp1, fp2, TRANSFER_FP_LEN) == 0);
    /* another alias is another request */
    memset(&t2, 0, sizeof(t2));
    ct.creditor_alias = "03001234568";
    CHECK(transfer_from_credit_transfer(&t2, &ct, "JAZZ", reason, text, sizeof(text)) == 0);
    transfer_fingerprint(&t2, fp2);
    CHECK(memcmp(fp1, fp2, TRANSFER_FP_LEN) != 0);
    memset(&t2, 0, sizeof(t2));
    ct.creditor_alias = "03001234567";
    ct.creditor_agent = "EASY";
    CHECK(transfer_from_credit_transfer(&t2, &ct, "JAZZ", reason, text, sizeof(text)) != 0);
    CHECK_STR(reason, "FF01");
    CHECK(strstr(text, "creditor_alias replaces") != NULL, "%s", text);
    ct.creditor_agent = "";
    ct.creditor_account = "ACC";
    memset(&t2, 0, sizeof(t2));
    CHECK(transfer_from_credit_transfer(&t2, &ct, "JAZZ", reason, text, sizeof(text)) != 0);
    CHECK_STR(reason, "FF01");
    ct.creditor_account = "";
    ct.creditor_alias = "0300123456";
    memset(&t2, 0, sizeof(t2));
    CHECK(transfer_from_credit_transfer(&t2, &ct, "JAZZ", reason, text, sizeof(text)) != 0);
    CHECK_STR(reason, "FF01");
    CHECK(strstr(text, "creditor_alias is not a Pakistani mobile number") != NULL, "%s", text);
    ct.creditor_alias = "\xc3\x28";
    memset(&t2, 0, sizeof(t2));
    CHECK(transfer_from_credit_transfer(&t2, &ct, "JAZZ", reason, text, sizeof(text)) != 0);
    CHECK(strstr(text, "creditor_alias is not valid UTF-8") != NULL, "%s", text);
    /* without an alias: the agent and account as before */
    ct.creditor_alias = "";
    ct.creditor_agent = "EASY";
    ct.creditor_account = "ACC";
    memset(&t2, 0, sizeof(t2));
    CHECK(transfer_from_credit_transfer(&t2, &ct, "JAZZ", reason, text, sizeof(text)) == 0);
    CHECK_STR(t2.payee, "EASY");
    CHECK_STR(t2.creditor_alias, "");

    fprintf(stderr, "PASS test_alias\n");
    return 0;
}
