/* Unit tests of mod_paywall's Stripe webhook event parser (paywall_event.c) and plan table: real-shaped events of
 * every handled type in the shapes of API versions 2024-06-20 and 2025-03-31.basil (where current_period_end,
 * the invoice's subscription and the checkout's shipping details moved), unknown types, replays and ordering, and
 * refusals: every truncation of a valid event, a wrong type and a missing value for each field read, control
 * characters, numbers beyond range, oversize and deeply nested documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "paywall.h"

/* ---------------------------------------------------------------------------------------------- fixtures */

/* Event payloads as Stripe sends them (fields trimmed where mod_paywall reads nothing near them), written after the
 * object shapes of Stripe's API reference and the types of the stripe npm package 23.1.0; the same events are the
 * seed corpus in tests/fuzz/corpus/webhook_json. */
/* checkout_session_completed_basil.json */
static const char fx_checkout_basil[] =
    "{\"id\":\"evt_1QwErTLkdIwHu7ixCheckout01\",\"object\":\"event\",\"api_version\":\"2025-03-31.basil\",\"created\":1"
    "743500000,\"data\":{\"object\":{\"id\":\"cs_test_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ\",\"object\":\"checkout.s"
    "ession\",\"adaptive_pricing\":{\"enabled\":true},\"after_expiration\":null,\"allow_promotion_codes\":true,\"am"
    "ount_subtotal\":1990,\"amount_total\":1990,\"automatic_tax\":{\"enabled\":false,\"liability\":null,\"provider\""
    ":null,\"status\":null},\"billing_address_collection\":null,\"cancel_url\":\"https://news.example/subscribe?"
    "canceled=1\",\"client_reference_id\":\"4711\",\"client_secret\":null,\"collected_information\":{\"business_nam"
    "e\":\"Example Verlag GmbH\",\"individual_name\":null,\"shipping_details\":{\"address\":{\"city\":\"Berlin\",\"coun"
    "try\":\"DE\",\"line1\":\"Hauptstra\\u00dfe 1\",\"line2\":\"Hinterhaus, 3. "
    "OG\",\"postal_code\":\"10115\",\"state\":nul"
    "l},\"name\":\"Zo\\u00eb M\\u00fcller\"}},\"consent\":null,\"consent_collection\":null,\"created\":1743499900,\"cu"
    "rrency\":\"eur\",\"currency_conversion\":null,\"custom_fields\":[],\"custom_text\":{\"after_submit\":null,\"ship"
    "ping_address\":null,\"submit\":null,\"terms_of_service_acceptance\":null},\"customer\":\"cus_RqStUvWxYz0123\""
    ",\"customer_creation\":\"always\",\"customer_details\":{\"address\":{\"city\":\"Berlin\",\"country\":\"DE\","
    "\"line1\":"
    "\"Hauptstra\\u00dfe "
    "1\",\"line2\":null,\"postal_code\":\"10115\",\"state\":null},\"business_name\":null,\"email\":\""
    "zoe@example.com\",\"individual_name\":null,\"name\":\"Zo\\u00eb M\\u00fcller\",\"phone\":null,\"tax_exempt\":\"non"
    "e\",\"tax_ids\":[]},\"customer_email\":\"zoe.prefilled@example.com\",\"discounts\":[],\"expires_at\":1743586300"
    ",\"invoice\":\"in_1QwErSLkdIwHu7ixInv00001\",\"invoice_creation\":null,\"livemode\":false,\"locale\":\"de\",\"met"
    "adata\":{},\"mode\":\"subscription\",\"payment_intent\":null,\"payment_link\":null,\"payment_method_collection"
    "\":\"always\",\"payment_method_configuration_details\":null,\"payment_method_options\":{\"card\":{\"request_th"
    "ree_d_secure\":\"automatic\"}},\"payment_method_types\":[\"card\"],\"payment_status\":\"paid\",\"permissions\":nu"
    "ll,\"phone_number_collection\":{\"enabled\":false},\"recovered_from\":null,\"saved_payment_method_options\":"
    "{\"allow_redisplay_filters\":[\"always\"],\"payment_method_remove\":null,\"payment_method_save\":null},\"setu"
    "p_intent\":null,\"shipping_address_collection\":{\"allowed_countries\":[\"DE\",\"AT\",\"CH\"]},\"shipping_cost\":"
    "null,\"shipping_options\":[],\"status\":\"complete\",\"submit_type\":null,\"subscription\":\"sub_1QwErSLkdIwHu7"
    "ixSub00001\",\"success_url\":\"https://news.example/welcome?session_id={CHECKOUT_SESSION_ID}\",\"total_det"
    "ails\":{\"amount_discount\":0,\"amount_shipping\":0,\"amount_tax\":0},\"ui_mode\":\"hosted\",\"url\":null,\"wallet"
    "_options\":null}},\"livemode\":false,\"pending_webhooks\":1,\"request\":{\"id\":null,\"idempotency_key\":null},"
    "\"type\":\"checkout.session.completed\"}";

/* checkout_session_completed_2024.json */
static const char fx_checkout_2024[] =
    "{\"id\":\"evt_1PbQz2LkdIwHu7ixCheckout02\",\"object\":\"event\",\"api_version\":\"2024-06-20\",\"created\":1718000"
    "000,\"data\":{\"object\":{\"id\":\"cs_live_b1C2d3E4f5G6h7I8j9K0\",\"object\":\"checkout.session\",\"after_expirat"
    "ion\":null,\"allow_promotion_codes\":null,\"amount_subtotal\":14900,\"amount_total\":11900,\"automatic_tax\":"
    "{\"enabled\":false,\"liability\":null,\"status\":null},\"billing_address_collection\":\"required\",\"cancel_url"
    "\":\"https://news.example/subscribe\",\"client_reference_id\":\"8a1f2b3c-4d5e-6f70-8192-a3b4c5d6e7f8\",\"cli"
    "ent_secret\":null,\"consent\":null,\"consent_collection\":null,\"created\":1717999900,\"currency\":\"eur\",\"cur"
    "rency_conversion\":null,\"custom_fields\":[],\"custom_text\":{\"after_submit\":null,\"shipping_address\":null"
    ",\"submit\":null,\"terms_of_service_acceptance\":null},\"customer\":\"cus_QaBcDeFgHiJkLm\",\"customer_creatio"
    "n\":\"always\",\"customer_details\":{\"address\":{\"city\":\"Wien\",\"country\":\"AT\",\"line1\":"
    "\"Ringstra\\u00dfe 5\","
    "\"line2\":null,\"postal_code\":\"1010\",\"state\":null},\"email\":null,\"name\":\"Anna "
    "Gruber\",\"phone\":null,\"tax_"
    "exempt\":\"none\",\"tax_ids\":[]},\"customer_email\":\"anna@example.at\",\"expires_at\":1718086300,\"invoice\":\"i"
    "n_1PbQz1LkdIwHu7ixInv00002\",\"invoice_creation\":null,\"livemode\":true,\"locale\":\"auto\",\"metadata\":{\"pro"
    "mo\":\"SPRING24\"},\"mode\":\"subscription\",\"payment_intent\":null,\"payment_link\":null,\"payment_method_coll"
    "ection\":\"always\",\"payment_method_configuration_details\":null,\"payment_method_options\":{},\"payment_me"
    "thod_types\":[\"card\",\"sepa_debit\"],\"payment_status\":\"paid\",\"phone_number_collection\":{\"enabled\":false"
    "},\"recovered_from\":null,\"saved_payment_method_options\":null,\"setup_intent\":null,\"shipping_address_co"
    "llection\":{\"allowed_countries\":[\"AT\",\"DE\"]},\"shipping_cost\":null,\"shipping_details\":{\"address\":{\"cit"
    "y\":\"Wien\",\"country\":\"AT\",\"line1\":\"Ringstra\\u00dfe 5\",\"line2\":\"Top "
    "12\",\"postal_code\":\"1010\",\"state\":n"
    "ull},\"name\":\"Anna Gruber\"},\"shipping_options\":[],\"status\":\"complete\",\"submit_type\":null,\"subscriptio"
    "n\":\"sub_1PbQz1LkdIwHu7ixSub00002\",\"success_url\":\"https://news.example/welcome\",\"total_details\":{\"amo"
    "unt_discount\":3000,\"amount_shipping\":0,\"amount_tax\":0},\"ui_mode\":\"hosted\",\"url\":null}},\"livemode\":tr"
    "ue,\"pending_webhooks\":2,\"request\":{\"id\":null,\"idempotency_key\":null},\"type\":\"checkout.session.comple"
    "ted\"}";

/* customer_subscription_created_2024.json */
static const char fx_sub_created_2024[] =
    "{\"id\":\"evt_1PbQz3LkdIwHu7ixSubCreated\",\"object\":\"event\",\"api_version\":\"2024-06-20\",\"created\":1717999"
    "990,\"data\":{\"object\":{\"id\":\"sub_1PbQz1LkdIwHu7ixSub00002\",\"object\":\"subscription\",\"application\":null"
    ",\"application_fee_percent\":null,\"automatic_tax\":{\"enabled\":false,\"liability\":null},\"billing_cycle_an"
    "chor\":1717999985,\"billing_cycle_anchor_config\":null,\"billing_thresholds\":null,\"cancel_at\":null,\"canc"
    "el_at_period_end\":false,\"canceled_at\":null,\"cancellation_details\":{\"comment\":null,\"feedback\":null,\"r"
    "eason\":null},\"collection_method\":\"charge_automatically\",\"created\":1717999985,\"currency\":\"eur\",\"curre"
    "nt_period_end\":1749535985,\"current_period_start\":1717999985,\"customer\":\"cus_QaBcDeFgHiJkLm\",\"days_un"
    "til_due\":null,\"default_payment_method\":\"pm_1PbQz0LkdIwHu7ixPm000002\",\"default_source\":null,\"default_"
    "tax_rates\":[],\"description\":null,\"discount\":null,\"discounts\":[],\"ended_at\":null,\"invoice_settings\":{"
    "\"account_tax_ids\":null,\"issuer\":{\"type\":\"self\"}},\"items\":{\"object\":\"list\",\"data\":[{\"id\":\"si_"
    "QaBcDeFg"
    "HiJkLm\",\"object\":\"subscription_item\",\"billing_thresholds\":null,\"created\":1717999986,\"discounts\":[],\""
    "metadata\":{},\"plan\":{\"id\":\"price_1PaAbCLkdIwHu7ixPrintYear\",\"object\":\"plan\",\"active\":true,\"amount\":"
    "1"
    "4900,\"currency\":\"eur\",\"interval\":\"year\",\"interval_count\":1,\"product\":\"prod_QaBcPrint\"},\"price\":{"
    "\"id\""
    ":\"price_1PaAbCLkdIwHu7ixPrintYear\",\"object\":\"price\",\"active\":true,\"billing_scheme\":\"per_unit\",\"creat"
    "ed\":1717000000,\"currency\":\"eur\",\"custom_unit_amount\":null,\"livemode\":true,\"lookup_key\":\"print_yearly"
    "\",\"metadata\":{},\"nickname\":\"Print + Digital, yearly\",\"product\":\"prod_QaBcPrint\",\"recurring\":{\"aggreg"
    "ate_usage\":null,\"interval\":\"year\",\"interval_count\":1,\"meter\":null,\"trial_period_days\":null,\"usage_ty"
    "pe\":\"licensed\"},\"tax_behavior\":\"inclusive\",\"tiers_mode\":null,\"transform_quantity\":null,\"type\":\"recur"
    "ring\",\"unit_amount\":14900,\"unit_amount_decimal\":\"14900\"},\"quantity\":1,\"subscription\":\"sub_1PbQz1LkdI"
    "wHu7ixSub00002\",\"tax_rates\":[]}],\"has_more\":false,\"total_count\":1,\"url\":\"/v1/subscription_items?subs"
    "cription=sub_1PbQz1LkdIwHu7ixSub00002\"},\"latest_invoice\":\"in_1PbQz1LkdIwHu7ixInv00002\",\"livemode\":tr"
    "ue,\"metadata\":{},\"next_pending_invoice_item_invoice\":null,\"on_behalf_of\":null,\"pause_collection\":nul"
    "l,\"payment_settings\":{\"payment_method_options\":null,\"payment_method_types\":null,\"save_default_paymen"
    "t_method\":\"off\"},\"pending_invoice_item_interval\":null,\"pending_setup_intent\":null,\"pending_update\":n"
    "ull,\"plan\":{\"id\":\"price_1PaAbCLkdIwHu7ixPrintYear\",\"object\":\"plan\",\"amount\":14900,\"currency\":"
    "\"eur\",\""
    "interval\":\"year\"},\"quantity\":1,\"schedule\":null,\"start_date\":1717999985,\"status\":\"active\",\"test_clock"
    "\":null,\"transfer_data\":null,\"trial_end\":null,\"trial_settings\":{\"end_behavior\":{\"missing_payment_meth"
    "od\":\"create_invoice\"}},\"trial_start\":null}},\"livemode\":true,\"pending_webhooks\":2,\"request\":{\"id\":nul"
    "l,\"idempotency_key\":\"0d5e7f6a-1b2c-4d3e-8f90-a1b2c3d4e5f6\"},\"type\":\"customer.subscription.created\"}";

/* customer_subscription_updated_basil.json */
static const char fx_sub_updated_basil[] =
    "{\"id\":\"evt_1RxYzALkdIwHu7ixSubUpdated\",\"object\":\"event\",\"api_version\":\"2025-03-31.basil\",\"created\":1"
    "745000000,\"data\":{\"object\":{\"id\":\"sub_1QwErSLkdIwHu7ixSub00001\",\"object\":\"subscription\",\"application"
    "\":null,\"application_fee_percent\":null,\"automatic_tax\":{\"disabled_reason\":null,\"enabled\":false,\"liabi"
    "lity\":null},\"billing_cycle_anchor\":1743499990,\"billing_cycle_anchor_config\":null,\"billing_mode\":{\"ty"
    "pe\":\"classic\"},\"cancel_at\":1746091990,\"cancel_at_period_end\":true,\"canceled_at\":1744999999,\"cancella"
    "tion_details\":{\"comment\":null,\"feedback\":\"too_expensive\",\"reason\":\"cancellation_requested\"},\"collect"
    "ion_method\":\"charge_automatically\",\"created\":1743499990,\"currency\":\"eur\",\"customer\":\"cus_RqStUvWxYz0"
    "123\",\"days_until_due\":null,\"default_payment_method\":\"pm_1QwErRLkdIwHu7ixPm000001\",\"default_source\":n"
    "ull,\"default_tax_rates\":[],\"description\":null,\"discounts\":[],\"ended_at\":null,\"invoice_settings\":{\"ac"
    "count_tax_ids\":null,\"issuer\":{\"type\":\"self\"}},\"items\":{\"object\":\"list\",\"data\":[{\"id\":\"si_"
    "RqStUvWxYz0"
    "123\",\"object\":\"subscription_item\",\"billing_thresholds\":null,\"created\":1743499991,\"current_period_end"
    "\":1746091990,\"current_period_start\":1743499990,\"discounts\":[],\"metadata\":{},\"plan\":{\"id\":\"price_1QaB"
    "cDLkdIwHu7ixDigital\",\"object\":\"plan\",\"active\":true,\"amount\":1990,\"currency\":\"eur\",\"interval\":"
    "\"month\""
    ",\"interval_count\":1,\"product\":\"prod_RqDigital\"},\"price\":{\"id\":\"price_1QaBcDLkdIwHu7ixDigital\",\"objec"
    "t\":\"price\",\"active\":true,\"billing_scheme\":\"per_unit\",\"created\":1743000000,\"currency\":\"eur\","
    "\"custom_u"
    "nit_amount\":null,\"livemode\":false,\"lookup_key\":null,\"metadata\":{},\"nickname\":null,\"product\":\"prod_Rq"
    "Digital\",\"recurring\":{\"interval\":\"month\",\"interval_count\":1,\"meter\":null,\"trial_period_days\":null,\"u"
    "sage_type\":\"licensed\"},\"tax_behavior\":\"unspecified\",\"tiers_mode\":null,\"transform_quantity\":null,\"typ"
    "e\":\"recurring\",\"unit_amount\":1990,\"unit_amount_decimal\":\"1990\"},\"quantity\":1,\"subscription\":\"sub_1Qw"
    "ErSLkdIwHu7ixSub00001\",\"tax_rates\":[]}],\"has_more\":false,\"total_count\":1,\"url\":\"/v1/subscription_ite"
    "ms?subscription=sub_1QwErSLkdIwHu7ixSub00001\"},\"latest_invoice\":\"in_1QwErSLkdIwHu7ixInv00001\",\"livem"
    "ode\":false,\"metadata\":{\"user_id\":\"4711\"},\"next_pending_invoice_item_invoice\":null,\"on_behalf_of\":nul"
    "l,\"pause_collection\":null,\"payment_settings\":{\"payment_method_options\":null,\"payment_method_types\":n"
    "ull,\"save_default_payment_method\":\"off\"},\"pending_invoice_item_interval\":null,\"pending_setup_intent\""
    ":null,\"pending_update\":null,\"plan\":{\"id\":\"price_1QaBcDLkdIwHu7ixDigital\",\"object\":\"plan\"},\"quantity\""
    ":1,\"schedule\":null,\"start_date\":1743499990,\"status\":\"active\",\"test_clock\":null,\"transfer_data\":null,"
    "\"trial_end\":null,\"trial_settings\":{\"end_behavior\":{\"missing_payment_method\":\"create_invoice\"}},\"tria"
    "l_start\":null},\"previous_attributes\":{\"cancel_at\":null,\"cancel_at_period_end\":false,\"canceled_at\":nu"
    "ll,\"cancellation_details\":{\"feedback\":null,\"reason\":null}}},\"livemode\":false,\"pending_webhooks\":1,\"r"
    "equest\":{\"id\":\"req_AbCdEfGhIjKlMn\",\"idempotency_key\":\"a7c1e3f5-0b2d-4e6f-8a9b-c0d1e2f3a4b5\"},\"type\":"
    "\"customer.subscription.updated\"}";

/* customer_subscription_deleted_2024.json */
static const char fx_sub_deleted_2024[] =
    "{\"id\":\"evt_1PcDeFLkdIwHu7ixSubDeleted\",\"object\":\"event\",\"api_version\":\"2024-06-20\",\"created\":1749536"
    "000,\"data\":{\"object\":{\"id\":\"sub_1PbQz1LkdIwHu7ixSub00002\",\"object\":\"subscription\",\"cancel_at\":null,"
    "\""
    "cancel_at_period_end\":false,\"canceled_at\":1749535999,\"cancellation_details\":{\"comment\":null,\"feedbac"
    "k\":null,\"reason\":\"payment_failed\"},\"collection_method\":\"charge_automatically\",\"created\":1717999985,\""
    "currency\":\"eur\",\"current_period_end\":1749535985,\"current_period_start\":1717999985,\"customer\":\"cus_Qa"
    "BcDeFgHiJkLm\",\"ended_at\":1749535999,\"items\":{\"object\":\"list\",\"data\":[{\"id\":\"si_QaBcDeFgHiJkLm\","
    "\"obje"
    "ct\":\"subscription_item\",\"created\":1717999986,\"metadata\":{},\"price\":{\"id\":\"price_1PaAbCLkdIwHu7ixPrin"
    "tYear\",\"object\":\"price\",\"currency\":\"eur\",\"product\":\"prod_QaBcPrint\",\"type\":\"recurring\",\"unit_"
    "amount\""
    ":14900},\"quantity\":1,\"subscription\":\"sub_1PbQz1LkdIwHu7ixSub00002\",\"tax_rates\":[]}],\"has_more\":false"
    ",\"total_count\":1,\"url\":\"/v1/subscription_items?subscription=sub_1PbQz1LkdIwHu7ixSub00002\"},\"latest_i"
    "nvoice\":\"in_1PcDeELkdIwHu7ixInv00003\",\"livemode\":true,\"metadata\":{\"user_id\":\"8a1f2b3c-4d5e-6f70-8192"
    "-a3b4c5d6e7f8\"},\"start_date\":1717999985,\"status\":\"canceled\",\"trial_end\":null,\"trial_start\":null}},\"l"
    "ivemode\":true,\"pending_webhooks\":2,\"request\":{\"id\":null,\"idempotency_key\":null},\"type\":\"customer.sub"
    "scription.deleted\"}";

/* invoice_paid_2024.json */
static const char fx_invoice_paid_2024[] =
    "{\"id\":\"evt_1PbQz4LkdIwHu7ixInvoicePd\",\"object\":\"event\",\"api_version\":\"2024-06-20\",\"created\":17179999"
    "95,\"data\":{\"object\":{\"id\":\"in_1PbQz1LkdIwHu7ixInv00002\",\"object\":\"invoice\",\"account_country\":\"DE\","
    "\"a"
    "ccount_name\":\"Example News\",\"amount_due\":11900,\"amount_paid\":11900,\"amount_remaining\":0,\"amount_ship"
    "ping\":0,\"attempt_count\":1,\"attempted\":true,\"billing_reason\":\"subscription_create\",\"charge\":\"ch_3PbQz"
    "1LkdIwHu7ix0abcdefg\",\"collection_method\":\"charge_automatically\",\"created\":1717999985,\"currency\":\"eur"
    "\",\"customer\":\"cus_QaBcDeFgHiJkLm\",\"customer_address\":null,\"customer_email\":\"anna@example.at\",\"custom"
    "er_name\":\"Anna "
    "Gruber\",\"customer_shipping\":{\"address\":{\"city\":\"Wien\",\"country\":\"AT\",\"line1\":\"Ringstr"
    "a\\u00dfe 5\",\"line2\":\"Top 12\",\"postal_code\":\"1010\",\"state\":null},\"name\":\"Anna "
    "Gruber\",\"phone\":null},\""
    "hosted_invoice_url\":\"https://invoice.stripe.com/i/acct_1/test_abc\",\"lines\":{\"object\":\"list\",\"data\":["
    "{\"id\":\"il_1PbQz1LkdIwHu7ixLine0002\",\"object\":\"line_item\",\"amount\":14900,\"currency\":\"eur\","
    "\"descriptio"
    "n\":\"1 \\u00d7 Print + Digital (at \\u20ac149.00 / year)\",\"period\":{\"end\":1749535985,\"start\":1717999985"
    "},\"price\":{\"id\":\"price_1PaAbCLkdIwHu7ixPrintYear\",\"object\":\"price\"},\"quantity\":1,\"subscription\":"
    "\"sub"
    "_1PbQz1LkdIwHu7ixSub00002\",\"type\":\"subscription\"}],\"has_more\":false,\"total_count\":1,\"url\":\"/v1/invoi"
    "ces/in_1PbQz1LkdIwHu7ixInv00002/lines\"},\"livemode\":true,\"metadata\":{},\"paid\":true,\"payment_intent\":\""
    "pi_3PbQz1LkdIwHu7ix0abcdefg\",\"period_end\":1717999985,\"period_start\":1717999985,\"status\":\"paid\",\"stat"
    "us_transitions\":{\"finalized_at\":1717999985,\"marked_uncollectible_at\":null,\"paid_at\":1717999994,\"void"
    "ed_at\":null},\"subscription\":\"sub_1PbQz1LkdIwHu7ixSub00002\",\"subscription_details\":{\"metadata\":{}},\"s"
    "ubtotal\":14900,\"total\":11900}},\"livemode\":true,\"pending_webhooks\":2,\"request\":{\"id\":null,\"idempotenc"
    "y_key\":null},\"type\":\"invoice.paid\"}";

/* invoice_payment_failed_basil.json */
static const char fx_invoice_failed_basil[] =
    "{\"id\":\"evt_1SaBcDLkdIwHu7ixInvFailed\",\"object\":\"event\",\"api_version\":\"2025-03-31.basil\",\"created\":17"
    "46092100,\"data\":{\"object\":{\"id\":\"in_1SaBcCLkdIwHu7ixInv00004\",\"object\":\"invoice\",\"account_country\":"
    "\""
    "DE\",\"account_name\":\"Example News\",\"amount_due\":1990,\"amount_overpaid\":0,\"amount_paid\":0,\"amount_rema"
    "ining\":1990,\"amount_shipping\":0,\"attempt_count\":1,\"attempted\":true,\"billing_reason\":\"subscription_cy"
    "cle\",\"collection_method\":\"charge_automatically\",\"created\":1746091990,\"currency\":\"eur\",\"customer\":\"cu"
    "s_RqStUvWxYz0123\",\"customer_email\":\"zoe@example.com\",\"customer_name\":\"Zo\\u00eb M\\u00fcller\",\"lines\":"
    "{\"object\":\"list\",\"data\":[{\"id\":\"il_1SaBcCLkdIwHu7ixLine0004\",\"object\":\"line_item\",\"amount\":1990,"
    "\"cur"
    "rency\":\"eur\",\"parent\":{\"subscription_item_details\":{\"subscription\":\"sub_1QwErSLkdIwHu7ixSub00001\",\"s"
    "ubscription_item\":\"si_RqStUvWxYz0123\",\"proration\":false},\"type\":\"subscription_item_details\"},\"period"
    "\":{\"end\":1748770390,\"start\":1746091990},\"pricing\":{\"price_details\":{\"price\":\"price_1QaBcDLkdIwHu7ixD"
    "igital\",\"product\":\"prod_RqDigital\"},\"type\":\"price_details\",\"unit_amount_decimal\":\"1990\"},"
    "\"quantity\":"
    "1}],\"has_more\":false,\"total_count\":1,\"url\":\"/v1/invoices/in_1SaBcCLkdIwHu7ixInv00004/lines\"},\"livemo"
    "de\":false,\"metadata\":{},\"next_payment_attempt\":1746351190,\"parent\":{\"quote_details\":null,\"subscripti"
    "on_details\":{\"metadata\":{\"user_id\":\"4711\"},\"subscription\":\"sub_1QwErSLkdIwHu7ixSub00001\"},\"type\":\"su"
    "bscription_details\"},\"period_end\":1746091990,\"period_start\":1743499990,\"status\":\"open\",\"status_trans"
    "itions\":{\"finalized_at\":1746091995,\"marked_uncollectible_at\":null,\"paid_at\":null,\"voided_at\":null},\""
    "subtotal\":1990,\"total\":1990}},\"livemode\":false,\"pending_webhooks\":1,\"request\":{\"id\":null,\"idempotenc"
    "y_key\":null},\"type\":\"invoice.payment_failed\"}";

/* customer_created_other.json */
static const char fx_other[] =
    "{\"id\":\"evt_1PbQz0LkdIwHu7ixCustCreat\",\"object\":\"event\",\"api_version\":\"2024-06-20\",\"created\":17179999"
    "80,\"data\":{\"object\":{\"id\":\"cus_QaBcDeFgHiJkLm\",\"object\":\"customer\",\"address\":null,\"balance\":0,"
    "\"creat"
    "ed\":1717999980,\"currency\":null,\"email\":\"anna@example.at\",\"livemode\":true,\"metadata\":{},\"name\":\"Anna "
    "Gruber\"}},\"livemode\":true,\"pending_webhooks\":2,\"request\":{\"id\":null,\"idempotency_key\":null},\"type\":\""
    "customer.created\"}";

/* ------------------------------------------------------------------------------------------------ helpers */

static paywall_event *parse_ok(const char *json)
{
    paywall_event *event = NULL;
    char err[256] = "";
    int rc = paywall_event_parse(json, strlen(json), &event, err, sizeof(err));

    if (rc != 0) {
        fail_msg("refused: %s", err);
    }
    assert_non_null(event);
    return event;
}

static int printable(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* What a table-driven test is at, for the failure message. */
static char test_context[256];

/* Refused with a non-empty printable message that contains want (when not NULL). */
static void parse_fails_len(const char *json, size_t len, const char *want)
{
    paywall_event *event = (paywall_event *)1;
    char err[256] = "";

    if (paywall_event_parse(json, len, &event, err, sizeof(err)) != -1) {
        fail_msg("accepted (%s): %.*s", test_context, (int)(len > 200 ? 200 : len), json);
    }
    assert_null(event);
    assert_true(err[0] != '\0');
    assert_true(printable(err));
    if (want != NULL && strstr(err, want) == NULL) {
        fail_msg("error \"%s\" lacks \"%s\" (%s)", err, want, test_context);
    }
}

static void parse_fails(const char *json, const char *want)
{
    parse_fails_len(json, strlen(json), want);
}

/* The node at a dotted path ("data.object.items.data.0.price"), creating nothing. */
static json_t *path_get(json_t *root, const char *path, char *last, size_t lastlen)
{
    char buf[256], *cursor = buf, *part, *next;
    json_t *node = root;

    snprintf(buf, sizeof(buf), "%s", path);
    for (part = strsep(&cursor, "."); part != NULL; part = next) {
        next = strsep(&cursor, ".");
        if (next == NULL) {
            snprintf(last, lastlen, "%s", part);
            return node;
        }
        node = json_is_array(node) ? json_array_get(node, strtoul(part, NULL, 10)) : json_object_get(node, part);
        assert_non_null(node);
    }
    return NULL;
}

/* The fixture with the member at path set to value (JSON text), or removed when value is NULL. Free the result. */
static char *mutate(const char *fixture, const char *path, const char *value)
{
    json_t *root = json_loads(fixture, JSON_PRESERVE_ORDER, NULL), *parent, *v;
    char last[64];
    char *text;

    assert_non_null(root);
    parent = path_get(root, path, last, sizeof(last));
    assert_non_null(parent);
    if (value == NULL) {
        json_object_del(parent, last);
    } else {
        v = json_loads(value, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        assert_non_null(v);
        json_object_set_new(parent, last, v);
    }
    text = json_dumps(root, JSON_PRESERVE_ORDER | JSON_COMPACT);
    assert_non_null(text);
    json_decref(root);
    return text;
}

static paywall_event *parse_mutated(const char *fixture, const char *path, const char *value)
{
    char *json = mutate(fixture, path, value);
    paywall_event *event = parse_ok(json);

    free(json);
    return event;
}

static void mutated_fails(const char *fixture, const char *path, const char *value, const char *want)
{
    char *json = mutate(fixture, path, value);

    parse_fails(json, want);
    free(json);
}

/* --------------------------------------------------------------------------------- checkout.session.completed */

static void test_checkout_basil(void **state)
{
    paywall_event *e = parse_ok(fx_checkout_basil);

    (void)state;
    assert_string_equal(e->id, "evt_1QwErTLkdIwHu7ixCheckout01");
    assert_int_equal(e->type, PAYWALL_EVENT_CHECKOUT_COMPLETED);
    assert_string_equal(e->type_text, "checkout.session.completed");
    assert_int_equal(e->created, 1743500000);
    assert_int_equal(e->livemode, 0);
    assert_string_equal(e->api_version, "2025-03-31.basil");
    assert_string_equal(e->checkout.session_id, "cs_test_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ");
    assert_string_equal(e->checkout.user_id, "4711");
    assert_string_equal(e->checkout.customer, "cus_RqStUvWxYz0123");
    /* what the customer typed wins over what was prefilled */
    assert_string_equal(e->checkout.email, "zoe@example.com");
    assert_string_equal(e->checkout.subscription, "sub_1QwErSLkdIwHu7ixSub00001");
    assert_string_equal(e->checkout.mode, "subscription");
    assert_string_equal(e->checkout.payment_status, "paid");
    assert_int_equal(e->checkout.has_amount_total, 1);
    assert_int_equal(e->checkout.amount_total, 1990);
    assert_string_equal(e->checkout.currency, "eur");
    assert_int_equal(e->checkout.has_shipping, 1);
    assert_string_equal(e->checkout.shipping.name, "Zo\303\253 M\303\274ller");
    assert_string_equal(e->checkout.shipping.company, "Example Verlag GmbH");
    assert_string_equal(e->checkout.shipping.line1, "Hauptstra\303\237e 1");
    assert_string_equal(e->checkout.shipping.line2, "Hinterhaus, 3. OG");
    assert_string_equal(e->checkout.shipping.postal_code, "10115");
    assert_string_equal(e->checkout.shipping.city, "Berlin");
    assert_null(e->checkout.shipping.state);
    assert_string_equal(e->checkout.shipping.country, "DE");
    assert_string_equal(e->warning, "");
    /* the other members stay zero */
    assert_null(e->subscription.subscription);
    assert_null(e->invoice.invoice);
    paywall_event_free(e);
}

static void test_checkout_2024(void **state)
{
    paywall_event *e = parse_ok(fx_checkout_2024);

    (void)state;
    assert_int_equal(e->type, PAYWALL_EVENT_CHECKOUT_COMPLETED);
    assert_int_equal(e->livemode, 1);
    assert_string_equal(e->checkout.user_id, "8a1f2b3c-4d5e-6f70-8192-a3b4c5d6e7f8");
    assert_string_equal(e->checkout.customer, "cus_QaBcDeFgHiJkLm");
    /* customer_details.email is null: customer_email */
    assert_string_equal(e->checkout.email, "anna@example.at");
    assert_int_equal(e->checkout.amount_total, 11900);
    /* top-level shipping_details, as before 2025-03-31 */
    assert_int_equal(e->checkout.has_shipping, 1);
    assert_string_equal(e->checkout.shipping.name, "Anna Gruber");
    assert_null(e->checkout.shipping.company);
    assert_string_equal(e->checkout.shipping.line2, "Top 12");
    assert_string_equal(e->checkout.shipping.country, "AT");
    paywall_event_free(e);
}

static void test_checkout_shapes(void **state)
{
    paywall_event *e;
    char *json, *json2;

    (void)state;
    /* shipping, the name before 2022-08-01 */
    json = mutate(fx_checkout_2024, "data.object.shipping_details", NULL);
    json2 = mutate(json, "data.object.shipping",
                   "{\"address\":{\"city\":\"Graz\",\"country\":\"AT\",\"line1\":\"Hof 1\",\"line2\":null,"
                   "\"postal_code\":\"8010\",\"state\":null},\"carrier\":null,\"name\":\"Old Shape\",\"phone\":null,"
                   "\"tracking_number\":null}");
    e = parse_ok(json2);
    assert_int_equal(e->checkout.has_shipping, 1);
    assert_string_equal(e->checkout.shipping.name, "Old Shape");
    assert_string_equal(e->checkout.shipping.city, "Graz");
    assert_null(e->checkout.shipping.line2);
    paywall_event_free(e);
    free(json);
    free(json2);

    /* no shipping anywhere: a digital plan */
    e = parse_mutated(fx_checkout_basil, "data.object.collected_information.shipping_details", "null");
    assert_int_equal(e->checkout.has_shipping, 0);
    assert_null(e->checkout.shipping.name);
    assert_string_equal(e->warning, "");
    paywall_event_free(e);
    e = parse_mutated(fx_checkout_basil, "data.object.collected_information", "null");
    assert_int_equal(e->checkout.has_shipping, 0);
    paywall_event_free(e);

    /* the newer place wins when both are there */
    json = mutate(fx_checkout_basil, "data.object.shipping_details",
                  "{\"address\":{\"city\":\"X\",\"country\":\"FR\",\"line1\":\"Y\"},\"name\":\"Z\"}");
    e = parse_ok(json);
    assert_string_equal(e->checkout.shipping.country, "DE");
    paywall_event_free(e);
    free(json);

    /* company from customer_details when collected_information has none */
    json = mutate(fx_checkout_basil, "data.object.collected_information.business_name", "null");
    json2 = mutate(json, "data.object.customer_details.business_name", "\"Details AG\"");
    e = parse_ok(json2);
    assert_string_equal(e->checkout.shipping.company, "Details AG");
    paywall_event_free(e);
    free(json);
    free(json2);

    /* payment mode without customer or subscription; no email at all; no amount */
    json = mutate(fx_checkout_basil, "data.object.customer", "null");
    json2 = mutate(json, "data.object.subscription", "null");
    free(json);
    json = mutate(json2, "data.object.customer_details", "null");
    free(json2);
    json2 = mutate(json, "data.object.customer_email", "null");
    free(json);
    json = mutate(json2, "data.object.amount_total", "null");
    free(json2);
    json2 = mutate(json, "data.object.currency", "null");
    e = parse_ok(json2);
    assert_null(e->checkout.customer);
    assert_null(e->checkout.subscription);
    assert_null(e->checkout.email);
    assert_int_equal(e->checkout.has_amount_total, 0);
    assert_string_equal(e->checkout.currency, "");
    paywall_event_free(e);
    free(json);
    free(json2);

    /* an expanded customer reads as its id */
    e = parse_mutated(fx_checkout_basil, "data.object.customer", "{\"id\":\"cus_Expanded1\",\"object\":\"customer\"}");
    assert_string_equal(e->checkout.customer, "cus_Expanded1");
    paywall_event_free(e);
    mutated_fails(fx_checkout_basil, "data.object.customer", "{\"object\":\"customer\"}", "data.object.customer");

    /* an empty client_reference_id is not a user id */
    mutated_fails(fx_checkout_basil, "data.object.client_reference_id", "\"\"", "client_reference_id");
    e = parse_mutated(fx_checkout_basil, "data.object.client_reference_id", "null");
    assert_null(e->checkout.user_id);
    paywall_event_free(e);
}

/* ---------------------------------------------------------------------------------- customer.subscription.* */

static void test_subscription_created_2024(void **state)
{
    paywall_event *e = parse_ok(fx_sub_created_2024);

    (void)state;
    assert_int_equal(e->type, PAYWALL_EVENT_SUBSCRIPTION_CREATED);
    assert_string_equal(e->subscription.subscription, "sub_1PbQz1LkdIwHu7ixSub00002");
    assert_string_equal(e->subscription.customer, "cus_QaBcDeFgHiJkLm");
    assert_string_equal(e->subscription.status_text, "active");
    assert_int_equal(e->subscription.status, PAYWALL_SUB_ACTIVE);
    assert_string_equal(e->subscription.price_id, "price_1PaAbCLkdIwHu7ixPrintYear");
    assert_int_equal(e->subscription.current_period_end, 1749535985);
    assert_int_equal(e->subscription.cancel_at_period_end, 0);
    assert_int_equal(e->subscription.cancel_at, 0);
    assert_int_equal(e->subscription.canceled_at, 0);
    assert_null(e->subscription.user_id);
    assert_null(e->checkout.session_id);
    paywall_event_free(e);
}

static void test_subscription_updated_basil(void **state)
{
    paywall_event *e = parse_ok(fx_sub_updated_basil);

    (void)state;
    assert_int_equal(e->type, PAYWALL_EVENT_SUBSCRIPTION_UPDATED);
    assert_string_equal(e->subscription.subscription, "sub_1QwErSLkdIwHu7ixSub00001");
    assert_int_equal(e->subscription.status, PAYWALL_SUB_ACTIVE);
    assert_string_equal(e->subscription.price_id, "price_1QaBcDLkdIwHu7ixDigital");
    /* from items.data[0], where 2025-03-31.basil puts it */
    assert_int_equal(e->subscription.current_period_end, 1746091990);
    assert_int_equal(e->subscription.cancel_at_period_end, 1);
    assert_int_equal(e->subscription.cancel_at, 1746091990);
    assert_int_equal(e->subscription.canceled_at, 1744999999);
    assert_string_equal(e->subscription.user_id, "4711");
    paywall_event_free(e);
}

static void test_subscription_deleted(void **state)
{
    paywall_event *e = parse_ok(fx_sub_deleted_2024);

    (void)state;
    assert_int_equal(e->type, PAYWALL_EVENT_SUBSCRIPTION_DELETED);
    assert_int_equal(e->subscription.status, PAYWALL_SUB_CANCELED);
    assert_string_equal(e->subscription.status_text, "canceled");
    assert_int_equal(e->subscription.canceled_at, 1749535999);
    assert_string_equal(e->subscription.user_id, "8a1f2b3c-4d5e-6f70-8192-a3b4c5d6e7f8");
    paywall_event_free(e);
}

static void test_subscription_shapes(void **state)
{
    paywall_event *e;
    char *json;

    (void)state;
    /* both places: the top level (the older shape) is read */
    e = parse_mutated(fx_sub_created_2024, "data.object.items.data.0.current_period_end", "1749535000");
    assert_int_equal(e->subscription.current_period_end, 1749535985);
    paywall_event_free(e);
    /* neither */
    mutated_fails(fx_sub_updated_basil, "data.object.items.data.0.current_period_end", NULL, "current_period_end");
    mutated_fails(fx_sub_created_2024, "data.object.current_period_end", "null", "current_period_end");
    /* a status this code does not know is kept as text and closes */
    e = parse_mutated(fx_sub_created_2024, "data.object.status", "\"on_hold\"");
    assert_int_equal(e->subscription.status, PAYWALL_SUB_UNKNOWN);
    assert_string_equal(e->subscription.status_text, "on_hold");
    paywall_event_free(e);
    e = parse_mutated(fx_sub_created_2024, "data.object.status", "\"past_due\"");
    assert_int_equal(e->subscription.status, PAYWALL_SUB_PAST_DUE);
    paywall_event_free(e);
    /* no items, items not a list */
    mutated_fails(fx_sub_created_2024, "data.object.items.data", "[]", "items.data is empty");
    mutated_fails(fx_sub_created_2024, "data.object.items.data", "{}", "items.data is not an array");
    mutated_fails(fx_sub_created_2024, "data.object.items.data", "[1]", "items.data[0] is not an object");
    /* metadata without user_id, or none */
    e = parse_mutated(fx_sub_updated_basil, "data.object.metadata", "{\"campaign\":\"x\"}");
    assert_null(e->subscription.user_id);
    paywall_event_free(e);
    e = parse_mutated(fx_sub_updated_basil, "data.object.metadata", "null");
    assert_null(e->subscription.user_id);
    paywall_event_free(e);
    /* a customer deleted since: still the id */
    json = mutate(fx_sub_created_2024, "data.object.customer",
                  "{\"id\":\"cus_Gone\",\"object\":\"customer\",\"deleted\":true}");
    e = parse_ok(json);
    assert_string_equal(e->subscription.customer, "cus_Gone");
    paywall_event_free(e);
    free(json);
}

/* ------------------------------------------------------------------------------------------------ invoice.* */

static void test_invoice_paid_2024(void **state)
{
    paywall_event *e = parse_ok(fx_invoice_paid_2024);

    (void)state;
    assert_int_equal(e->type, PAYWALL_EVENT_INVOICE_PAID);
    assert_string_equal(e->invoice.invoice, "in_1PbQz1LkdIwHu7ixInv00002");
    assert_string_equal(e->invoice.customer, "cus_QaBcDeFgHiJkLm");
    assert_string_equal(e->invoice.subscription, "sub_1PbQz1LkdIwHu7ixSub00002");
    assert_int_equal(e->invoice.amount_paid, 11900);
    assert_int_equal(e->invoice.amount_due, 11900);
    assert_string_equal(e->invoice.currency, "eur");
    assert_string_equal(e->invoice.status, "paid");
    assert_string_equal(e->invoice.billing_reason, "subscription_create");
    paywall_event_free(e);
}

static void test_invoice_failed_basil(void **state)
{
    paywall_event *e = parse_ok(fx_invoice_failed_basil);

    (void)state;
    assert_int_equal(e->type, PAYWALL_EVENT_INVOICE_PAYMENT_FAILED);
    assert_string_equal(e->invoice.invoice, "in_1SaBcCLkdIwHu7ixInv00004");
    /* from parent.subscription_details, where 2025-03-31.basil puts it */
    assert_string_equal(e->invoice.subscription, "sub_1QwErSLkdIwHu7ixSub00001");
    assert_int_equal(e->invoice.amount_paid, 0);
    assert_int_equal(e->invoice.amount_due, 1990);
    assert_string_equal(e->invoice.status, "open");
    assert_string_equal(e->invoice.billing_reason, "subscription_cycle");
    assert_int_equal(e->livemode, 0);
    paywall_event_free(e);
}

static void test_invoice_shapes(void **state)
{
    paywall_event *e;

    (void)state;
    /* an invoice no subscription made */
    e = parse_mutated(fx_invoice_failed_basil, "data.object.parent", "null");
    assert_null(e->invoice.subscription);
    paywall_event_free(e);
    e = parse_mutated(fx_invoice_failed_basil, "data.object.parent.subscription_details", "null");
    assert_null(e->invoice.subscription);
    paywall_event_free(e);
    e = parse_mutated(fx_invoice_paid_2024, "data.object.subscription", "null");
    assert_null(e->invoice.subscription);
    paywall_event_free(e);
    /* an expanded subscription in the new place */
    e = parse_mutated(fx_invoice_failed_basil, "data.object.parent.subscription_details.subscription",
                      "{\"id\":\"sub_Expanded\",\"object\":\"subscription\"}");
    assert_string_equal(e->invoice.subscription, "sub_Expanded");
    paywall_event_free(e);
    /* status null (Stripe's type allows it) */
    e = parse_mutated(fx_invoice_paid_2024, "data.object.status", "null");
    assert_null(e->invoice.status);
    paywall_event_free(e);
    mutated_fails(fx_invoice_failed_basil, "data.object.parent.subscription_details.subscription", "\"sub-1\"",
                  "parent.subscription_details.subscription");
}

/* ------------------------------------------------------------------------------------------ unknown types */

static void test_other_types(void **state)
{
    static const char *const others[] = {"\"customer.created\"", "\"invoice.finalized\"",
                                         "\"checkout.session.expired\"", "\"v2.core.event_destination.ping\"",
                                         "\"customer.subscription.paused\""};
    paywall_event *e;
    size_t i;

    (void)state;
    e = parse_ok(fx_other);
    assert_int_equal(e->type, PAYWALL_EVENT_OTHER);
    assert_string_equal(e->type_text, "customer.created");
    assert_string_equal(e->id, "evt_1PbQz0LkdIwHu7ixCustCreat");
    assert_int_equal(e->created, 1717999980);
    assert_int_equal(e->livemode, 1);
    assert_null(e->checkout.session_id);
    assert_null(e->subscription.subscription);
    assert_null(e->invoice.invoice);
    paywall_event_free(e);
    for (i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        e = parse_mutated(fx_sub_created_2024, "type", others[i]);
        assert_int_equal(e->type, PAYWALL_EVENT_OTHER);
        assert_null(e->subscription.subscription);
        paywall_event_free(e);
    }
    /* the data of an event we ignore is not read, so its shape cannot make us refuse it */
    e = parse_mutated(fx_other, "data", "\"not even an object\"");
    assert_int_equal(e->type, PAYWALL_EVENT_OTHER);
    paywall_event_free(e);
    e = parse_mutated(fx_other, "data", NULL);
    paywall_event_free(e);
    /* type matching is exact */
    e = parse_mutated(fx_invoice_paid_2024, "type", "\"Invoice.paid\"");
    assert_int_equal(e->type, PAYWALL_EVENT_OTHER);
    paywall_event_free(e);
    e = parse_mutated(fx_invoice_paid_2024, "type", "\"invoice.paid.x\"");
    assert_int_equal(e->type, PAYWALL_EVENT_OTHER);
    paywall_event_free(e);
    /* a handled type carrying another kind of object */
    mutated_fails(fx_invoice_paid_2024, "type", "\"customer.subscription.updated\"", "data.object.object");
    mutated_fails(fx_sub_created_2024, "type", "\"checkout.session.completed\"", "data.object.object");
    mutated_fails(fx_checkout_basil, "data.object.object", NULL, "data.object.object");
}

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(paywall_event_type_name(PAYWALL_EVENT_CHECKOUT_COMPLETED), "checkout.session.completed");
    assert_string_equal(paywall_event_type_name(PAYWALL_EVENT_SUBSCRIPTION_CREATED), "customer.subscription.created");
    assert_string_equal(paywall_event_type_name(PAYWALL_EVENT_SUBSCRIPTION_UPDATED), "customer.subscription.updated");
    assert_string_equal(paywall_event_type_name(PAYWALL_EVENT_SUBSCRIPTION_DELETED), "customer.subscription.deleted");
    assert_string_equal(paywall_event_type_name(PAYWALL_EVENT_INVOICE_PAID), "invoice.paid");
    assert_string_equal(paywall_event_type_name(PAYWALL_EVENT_INVOICE_PAYMENT_FAILED), "invoice.payment_failed");
    assert_string_equal(paywall_event_type_name(PAYWALL_EVENT_OTHER), "other");
}

/* --------------------------------------------------------------------------------- replays and ordering */

static void test_replay_same_result(void **state)
{
    static const char *const fixtures[] = {
        fx_checkout_basil,   fx_checkout_2024,     fx_sub_created_2024,     fx_sub_updated_basil,
        fx_sub_deleted_2024, fx_invoice_paid_2024, fx_invoice_failed_basil, fx_other};
    paywall_event *a, *b;
    size_t i;

    (void)state;
    /* A replay is the same bytes again: it parses to the same event, and the same id is what the store dedupes on. */
    for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        a = parse_ok(fixtures[i]);
        b = parse_ok(fixtures[i]);
        assert_string_equal(a->id, b->id);
        assert_int_equal(a->type, b->type);
        assert_int_equal(a->created, b->created);
        assert_int_equal(a->subscription.current_period_end, b->subscription.current_period_end);
        assert_int_equal(a->invoice.amount_paid, b->invoice.amount_paid);
        assert_true((a->checkout.session_id == NULL) == (b->checkout.session_id == NULL));
        paywall_event_free(a);
        paywall_event_free(b);
    }
}

static void test_should_apply(void **state)
{
    paywall_event *created = parse_ok(fx_sub_created_2024), *updated = parse_ok(fx_sub_updated_basil),
                  *deleted = parse_ok(fx_sub_deleted_2024), *paid = parse_ok(fx_invoice_paid_2024);
    time_t t;

    (void)state;
    /* nothing stored: anything applies */
    assert_true(paywall_event_should_apply(created, 0, 0, PAYWALL_SUB_UNKNOWN));
    assert_true(paywall_event_should_apply(updated, 0, 0, PAYWALL_SUB_UNKNOWN));
    /* newer applies, older does not */
    t = updated->created;
    assert_true(paywall_event_should_apply(updated, 1, t - 1, PAYWALL_SUB_ACTIVE));
    assert_false(paywall_event_should_apply(updated, 1, t + 1, PAYWALL_SUB_PAST_DUE));
    /* the same second: updated wins, created loses */
    assert_true(paywall_event_should_apply(updated, 1, t, PAYWALL_SUB_ACTIVE));
    t = created->created;
    assert_false(paywall_event_should_apply(created, 1, t, PAYWALL_SUB_ACTIVE));
    assert_true(paywall_event_should_apply(created, 1, t - 1, PAYWALL_SUB_INCOMPLETE));
    /* canceled is final: a late updated cannot revive it, even if it claims to be newer */
    assert_false(paywall_event_should_apply(updated, 1, 0, PAYWALL_SUB_CANCELED));
    assert_false(paywall_event_should_apply(updated, 1, 0, PAYWALL_SUB_INCOMPLETE_EXPIRED));
    assert_false(paywall_event_should_apply(created, 1, 0, PAYWALL_SUB_CANCELED));
    t = deleted->created;
    assert_true(paywall_event_should_apply(deleted, 1, t - 5, PAYWALL_SUB_CANCELED));
    assert_true(paywall_event_should_apply(deleted, 1, t, PAYWALL_SUB_ACTIVE));
    assert_false(paywall_event_should_apply(deleted, 1, t + 5, PAYWALL_SUB_CANCELED));
    /* other types are not ordered by this rule */
    assert_true(paywall_event_should_apply(paid, 1, paid->created + 100, PAYWALL_SUB_CANCELED));
    paywall_event_free(created);
    paywall_event_free(updated);
    paywall_event_free(deleted);
    paywall_event_free(paid);
}

/* ------------------------------------------------------------------------------------------- malformed input */

static void test_truncated_everywhere(void **state)
{
    static const char *const fixtures[] = {fx_checkout_basil, fx_invoice_failed_basil, fx_sub_deleted_2024};
    size_t i, cut, len;
    char *copy;

    (void)state;
    for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        len = strlen(fixtures[i]);
        /* copied into a buffer of exactly cut bytes, so that a read past the length shows under ASan and valgrind */
        for (cut = 0; cut < len; cut++) {
            copy = malloc(cut + 1);
            assert_non_null(copy);
            memcpy(copy, fixtures[i], cut);
            parse_fails_len(cut == 0 ? "" : copy, cut, NULL);
            free(copy);
        }
    }
}

typedef enum { K_ID, K_REF, K_USER, K_WORD, K_TEXT, K_INT, K_BOOL, K_CURRENCY, K_OBJECT } field_kind;

typedef struct {
    const char *fixture;
    const char *path;
    field_kind kind;
    int required;
} field;

/* Every field the parser reads, the kind of value it takes and whether it must be there. */
static const field fields[] = {
    {fx_other, "id", K_ID, 1},
    {fx_other, "type", K_WORD, 1},
    {fx_other, "created", K_INT, 1},
    {fx_other, "livemode", K_BOOL, 1},
    {fx_other, "api_version", K_WORD, 0},
    {fx_checkout_basil, "data", K_OBJECT, 1},
    {fx_checkout_basil, "data.object", K_OBJECT, 1},
    {fx_checkout_basil, "data.object.id", K_ID, 1},
    {fx_checkout_basil, "data.object.client_reference_id", K_USER, 0},
    {fx_checkout_basil, "data.object.customer", K_REF, 0},
    {fx_checkout_basil, "data.object.subscription", K_REF, 0},
    {fx_checkout_basil, "data.object.mode", K_WORD, 1},
    {fx_checkout_basil, "data.object.payment_status", K_WORD, 0},
    {fx_checkout_basil, "data.object.amount_total", K_INT, 0},
    {fx_checkout_basil, "data.object.currency", K_CURRENCY, 0},
    {fx_checkout_basil, "data.object.customer_email", K_TEXT, 0},
    {fx_checkout_basil, "data.object.customer_details", K_OBJECT, 0},
    {fx_checkout_basil, "data.object.customer_details.email", K_TEXT, 0},
    {fx_checkout_basil, "data.object.customer_details.business_name", K_TEXT, 0},
    {fx_checkout_basil, "data.object.collected_information", K_OBJECT, 0},
    {fx_checkout_basil, "data.object.collected_information.business_name", K_TEXT, 0},
    {fx_checkout_basil, "data.object.collected_information.shipping_details", K_OBJECT, 0},
    {fx_checkout_basil, "data.object.collected_information.shipping_details.name", K_TEXT, 0},
    {fx_checkout_basil, "data.object.collected_information.shipping_details.address", K_OBJECT, 1},
    {fx_checkout_basil, "data.object.collected_information.shipping_details.address.line1", K_TEXT, 0},
    {fx_checkout_basil, "data.object.collected_information.shipping_details.address.line2", K_TEXT, 0},
    {fx_checkout_basil, "data.object.collected_information.shipping_details.address.postal_code", K_TEXT, 0},
    {fx_checkout_basil, "data.object.collected_information.shipping_details.address.city", K_TEXT, 0},
    {fx_checkout_basil, "data.object.collected_information.shipping_details.address.state", K_TEXT, 0},
    {fx_checkout_basil, "data.object.collected_information.shipping_details.address.country", K_TEXT, 0},
    {fx_checkout_2024, "data.object.shipping_details", K_OBJECT, 0},
    {fx_checkout_2024, "data.object.shipping_details.name", K_TEXT, 0},
    {fx_checkout_2024, "data.object.shipping_details.address", K_OBJECT, 1},
    {fx_checkout_2024, "data.object.shipping_details.address.line1", K_TEXT, 0},
    {fx_checkout_2024, "data.object.shipping_details.address.country", K_TEXT, 0},
    {fx_sub_updated_basil, "data.object.id", K_ID, 1},
    {fx_sub_updated_basil, "data.object.customer", K_REF, 1},
    {fx_sub_updated_basil, "data.object.status", K_WORD, 1},
    {fx_sub_updated_basil, "data.object.cancel_at_period_end", K_BOOL, 1},
    {fx_sub_updated_basil, "data.object.cancel_at", K_INT, 0},
    {fx_sub_updated_basil, "data.object.canceled_at", K_INT, 0},
    {fx_sub_updated_basil, "data.object.metadata", K_OBJECT, 0},
    {fx_sub_updated_basil, "data.object.metadata.user_id", K_USER, 0},
    {fx_sub_updated_basil, "data.object.items", K_OBJECT, 1},
    {fx_sub_updated_basil, "data.object.items.data.0.price", K_OBJECT, 1},
    {fx_sub_updated_basil, "data.object.items.data.0.price.id", K_ID, 1},
    {fx_sub_updated_basil, "data.object.items.data.0.current_period_end", K_INT, 1},
    {fx_sub_created_2024, "data.object.current_period_end", K_INT, 1},
    {fx_invoice_paid_2024, "data.object.id", K_ID, 1},
    {fx_invoice_paid_2024, "data.object.customer", K_REF, 0},
    {fx_invoice_paid_2024, "data.object.subscription", K_REF, 0},
    {fx_invoice_paid_2024, "data.object.amount_paid", K_INT, 1},
    {fx_invoice_paid_2024, "data.object.amount_due", K_INT, 1},
    {fx_invoice_paid_2024, "data.object.currency", K_CURRENCY, 1},
    {fx_invoice_paid_2024, "data.object.status", K_WORD, 0},
    {fx_invoice_paid_2024, "data.object.billing_reason", K_WORD, 0},
    {fx_invoice_failed_basil, "data.object.parent", K_OBJECT, 0},
    {fx_invoice_failed_basil, "data.object.parent.subscription_details", K_OBJECT, 0},
    {fx_invoice_failed_basil, "data.object.parent.subscription_details.subscription", K_REF, 0},
};

/* The path as the parser names it: "items.data.0.price" -> "items.data[0].price". */
static void message_path(const char *path, char *out, size_t outlen)
{
    const char *zero = strstr(path, ".0");

    if (zero == NULL) {
        snprintf(out, outlen, "%s", path);
    } else {
        snprintf(out, outlen, "%.*s[0]%s", (int)(zero - path), path, zero + 2);
    }
}

static void test_wrong_types(void **state)
{
    static const char *const for_string[] = {"123", "1.5", "true", "false", "[]", "[\"x\"]", "{}"};
    static const char *const for_int[] = {"\"1718000000\"", "1.5", "1e3", "true", "[]", "{}", "-1"};
    static const char *const for_bool[] = {"0", "1", "\"true\"", "[]", "{}", "null"};
    static const char *const for_object[] = {"\"x\"", "1", "[]", "true", "[{}]"};
    const char *const *wrong;
    size_t i, j, n;
    char want[128];
    char *json;
    paywall_event *e;

    (void)state;
    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const field *f = &fields[i];

        message_path(f->path, want, sizeof(want));
        switch (f->kind) {
        case K_INT:
            wrong = for_int;
            n = sizeof(for_int) / sizeof(for_int[0]);
            break;
        case K_BOOL:
            wrong = for_bool;
            n = sizeof(for_bool) / sizeof(for_bool[0]);
            break;
        case K_OBJECT:
            wrong = for_object;
            n = sizeof(for_object) / sizeof(for_object[0]);
            break;
        default:
            wrong = for_string;
            n = sizeof(for_string) / sizeof(for_string[0]);
            break;
        }
        for (j = 0; j < n; j++) {
            snprintf(test_context, sizeof(test_context), "%s = %s", f->path, wrong[j]);
            mutated_fails(f->fixture, f->path, wrong[j], want);
        }
        snprintf(test_context, sizeof(test_context), "%s missing or null", f->path);
        /* missing, and null (which Stripe sends for "none" where its types say "| null") */
        json = mutate(f->fixture, f->path, NULL);
        if (f->required) {
            parse_fails(json, want);
        } else {
            e = parse_ok(json);
            paywall_event_free(e);
        }
        free(json);
        if (f->kind != K_BOOL) {
            json = mutate(f->fixture, f->path, "null");
            if (f->required) {
                parse_fails(json, want);
            } else {
                e = parse_ok(json);
                paywall_event_free(e);
            }
            free(json);
        }
    }
}

static void test_bad_strings(void **state)
{
    static const char *const bad_id[] = {"\"\"",          "\"cus 1\"",  "\"cus-1\"", "\"cus\\u0001\"",
                                         "\"c\\u00fcs\"", "\"cus\\n\"", "\"cus/1\"", "\"cus.1\""};
    static const char *const bad_user[] = {"\"\"",    "\"4 7\"",    "\"47\\n\"", "\"47\\u0000\"", "\"j\\u00fcrgen\"",
                                           "\"a,b\"", "\"a\\\"b\"", "\"a;b\""};
    static const char *const bad_word[] = {"\"\"", "\"a b\"", "\"a\\tb\"", "\"\\u00e4\"", "\"a/b\""};
    static const char *const bad_currency[] = {"\"\"", "\"EUR\"", "\"eu\"", "\"euro\"", "\"e1r\"", "\"\\u00e9ur\""};
    size_t i, j;
    char want[128];

    (void)state;
    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const field *f = &fields[i];
        const char *const *bad = NULL;
        size_t n = 0;

        message_path(f->path, want, sizeof(want));
        switch (f->kind) {
        case K_ID:
        case K_REF:
            bad = bad_id;
            n = sizeof(bad_id) / sizeof(bad_id[0]);
            break;
        case K_USER:
            bad = bad_user;
            n = sizeof(bad_user) / sizeof(bad_user[0]);
            break;
        case K_WORD:
            bad = bad_word;
            n = sizeof(bad_word) / sizeof(bad_word[0]);
            break;
        case K_CURRENCY:
            bad = bad_currency;
            n = sizeof(bad_currency) / sizeof(bad_currency[0]);
            break;
        default:
            break;
        }
        for (j = 0; j < n; j++) {
            snprintf(test_context, sizeof(test_context), "%s = %s", f->path, bad[j]);
            /* "\u0000" is refused by the JSON parser itself, before any field is looked at */
            mutated_fails(f->fixture, f->path, bad[j], strstr(bad[j], "u0000") != NULL ? NULL : want);
        }
    }
}

static void test_id_lengths(void **state)
{
    char value[300], *json;
    paywall_event *e;

    (void)state;
    value[0] = '"';
    memset(value + 1, 'a', 255);
    memcpy(value + 256, "\"", 2);
    e = parse_mutated(fx_sub_updated_basil, "data.object.customer", value);
    assert_int_equal(strlen(e->subscription.customer), 255);
    paywall_event_free(e);
    e = parse_mutated(fx_sub_updated_basil, "data.object.metadata.user_id", value);
    assert_int_equal(strlen(e->subscription.user_id), 255);
    paywall_event_free(e);
    memset(value + 1, 'a', 256);
    memcpy(value + 257, "\"", 2);
    mutated_fails(fx_sub_updated_basil, "data.object.customer", value, "data.object.customer");
    mutated_fails(fx_sub_updated_basil, "data.object.metadata.user_id", value, "metadata.user_id");
    mutated_fails(fx_other, "id", value, "id");
    /* a type may be long but not longer than an id */
    json = mutate(fx_other, "type", value);
    parse_fails(json, "type");
    free(json);
}

/* Names, addresses and emails: odd content is dropped with a warning, never refused, so that a paid subscription is
 * recorded all the same; a whole address goes when any part of it is bad. */
static void test_text_dropped(void **state)
{
    static const char *const address_fields[] = {
        "name",         "address.line1", "address.line2",  "address.postal_code",
        "address.city", "address.state", "address.country"};
    static const char *const bad_text[] = {"\"a\\u0007b\"", "\"a\\nb\"",     "\"a\\rb\"",    "\"a\\tb\"",
                                           "\"a\\u007fb\"", "\"a\\u0085b\"", "\"a\\u009fb\""};
    char path[160], long_text[600];
    paywall_event *e;
    size_t i, j;

    (void)state;
    for (i = 0; i < sizeof(address_fields) / sizeof(address_fields[0]); i++) {
        snprintf(path, sizeof(path), "data.object.collected_information.shipping_details.%s", address_fields[i]);
        for (j = 0; j < sizeof(bad_text) / sizeof(bad_text[0]); j++) {
            e = parse_mutated(fx_checkout_basil, path, bad_text[j]);
            assert_int_equal(e->checkout.has_shipping, 0);
            assert_null(e->checkout.shipping.name);
            assert_null(e->checkout.shipping.line1);
            assert_non_null(strstr(e->warning, path));
            assert_true(printable(e->warning));
            /* the rest of the event is intact */
            assert_string_equal(e->checkout.user_id, "4711");
            assert_string_equal(e->checkout.subscription, "sub_1QwErSLkdIwHu7ixSub00001");
            paywall_event_free(e);
        }
    }
    /* printable non-ASCII and a 512-byte line are fine; 513 bytes are not */
    e = parse_mutated(fx_checkout_basil, "data.object.collected_information.shipping_details.name",
                      "\"\\u00a0Jos\\u00e9 \\u6771\\u4eac \\ud83d\\udcf0\"");
    assert_int_equal(e->checkout.has_shipping, 1);
    assert_string_equal(e->checkout.shipping.name, "\302\240Jos\303\251 \346\235\261\344\272\254 \360\237\223\260");
    paywall_event_free(e);
    long_text[0] = '"';
    memset(long_text + 1, 'x', 512);
    memcpy(long_text + 513, "\"", 2);
    e = parse_mutated(fx_checkout_basil, "data.object.collected_information.shipping_details.address.line1", long_text);
    assert_int_equal(e->checkout.has_shipping, 1);
    assert_int_equal(strlen(e->checkout.shipping.line1), 512);
    paywall_event_free(e);
    memset(long_text + 1, 'x', 513);
    memcpy(long_text + 514, "\"", 2);
    e = parse_mutated(fx_checkout_basil, "data.object.collected_information.shipping_details.address.line1", long_text);
    assert_int_equal(e->checkout.has_shipping, 0);
    assert_non_null(strstr(e->warning, "too long"));
    paywall_event_free(e);
    /* a country that is not two capitals, an address without line1 or name */
    e = parse_mutated(fx_checkout_basil, "data.object.collected_information.shipping_details.address.country",
                      "\"de\"");
    assert_int_equal(e->checkout.has_shipping, 0);
    assert_non_null(strstr(e->warning, "country"));
    paywall_event_free(e);
    e = parse_mutated(fx_checkout_basil, "data.object.collected_information.shipping_details.address.country",
                      "\"DEU\"");
    assert_int_equal(e->checkout.has_shipping, 0);
    paywall_event_free(e);
    e = parse_mutated(fx_checkout_basil, "data.object.collected_information.shipping_details.address.line1", "\"\"");
    assert_int_equal(e->checkout.has_shipping, 0);
    assert_non_null(strstr(e->warning, "lacks"));
    paywall_event_free(e);
    e = parse_mutated(fx_checkout_basil, "data.object.collected_information.shipping_details.name", "null");
    assert_int_equal(e->checkout.has_shipping, 0);
    paywall_event_free(e);
    /* a bad company is dropped alone: it is not part of where the parcel goes */
    e = parse_mutated(fx_checkout_basil, "data.object.collected_information.business_name", "\"Evil\\nCorp\"");
    assert_int_equal(e->checkout.has_shipping, 1);
    assert_null(e->checkout.shipping.company);
    assert_non_null(strstr(e->warning, "business_name"));
    paywall_event_free(e);
    /* a bad email is dropped, and does not fall back to the prefilled one */
    e = parse_mutated(fx_checkout_basil, "data.object.customer_details.email", "\"zoe@example.com\\r\\nBcc: x\"");
    assert_null(e->checkout.email);
    assert_non_null(strstr(e->warning, "customer_details.email"));
    paywall_event_free(e);
}

static void test_numbers(void **state)
{
    static const struct {
        const char *fixture, *path, *value;
        int ok;
    } cases[] = {
        {fx_other, "created", "0", 1},
        {fx_other, "created", "253402300799", 1},
        {fx_other, "created", "253402300800", 0},
        {fx_other, "created", "-1", 0},
        {fx_other, "created", "9223372036854775807", 0},
        {fx_other, "created", "-9223372036854775808", 0},
        {fx_other, "created", "1718000000.0", 0},
        {fx_other, "created", "1.718e9", 0},
        {fx_invoice_paid_2024, "data.object.amount_paid", "0", 1},
        {fx_invoice_paid_2024, "data.object.amount_paid", "1000000000000000", 1},
        {fx_invoice_paid_2024, "data.object.amount_paid", "1000000000000001", 0},
        {fx_invoice_paid_2024, "data.object.amount_paid", "-100", 0},
        {fx_invoice_paid_2024, "data.object.amount_due", "9223372036854775807", 0},
        {fx_checkout_basil, "data.object.amount_total", "-1", 0},
        {fx_sub_updated_basil, "data.object.items.data.0.current_period_end", "-5", 0},
        {fx_sub_updated_basil, "data.object.cancel_at", "99999999999999", 0},
        {fx_sub_updated_basil, "data.object.canceled_at", "0", 1},
    };
    paywall_event *e;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].ok) {
            e = parse_mutated(cases[i].fixture, cases[i].path, cases[i].value);
            paywall_event_free(e);
        } else {
            char want[128];

            message_path(cases[i].path, want, sizeof(want));
            mutated_fails(cases[i].fixture, cases[i].path, cases[i].value, want);
        }
    }
    e = parse_mutated(fx_invoice_paid_2024, "data.object.amount_paid", "1000000000000000");
    assert_true(e->invoice.amount_paid == 1000000000000000LL);
    paywall_event_free(e);
    /* beyond 64 bits: jansson refuses while parsing */
    parse_fails("{\"id\":\"evt_1\",\"type\":\"x\",\"created\":99999999999999999999,\"livemode\":false}",
                "invalid JSON");
    parse_fails("{\"id\":\"evt_1\",\"type\":\"x\",\"created\":-99999999999999999999,\"livemode\":false}",
                "invalid JSON");
    parse_fails("{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1e400,\"livemode\":false}", "invalid JSON");
}

static void test_documents(void **state)
{
    static const char *const not_objects[] = {"[]", "[{\"id\":\"evt_1\"}]", "\"evt_1\"", "1", "null", "true"};
    static const char *const invalid[] = {
        "{",
        "}",
        "{\"id\":\"evt_1\",}",
        "{'id':'evt_1'}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1,\"livemode\":false} x",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1,\"livemode\":false}{}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1,\"livemode\":false,\"id\":\"evt_2\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1,\"livemode\":false,\"data\":{\"a\":1,\"a\":2}}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1,\"livemode\":false,\"x\":\"\\u0000\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1,\"livemode\":false,\"x\":\"\xc3\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1,\"livemode\":false,\"x\":\"\xed\xa0\x80\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1,\"livemode\":false,\"x\":\"\\ud800\"}",
        "{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1,\"livemode\":false,\"x\":\"a\nb\"}",
        "\xef\xbb\xbf{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1,\"livemode\":false}",
        "{\"id\":\"evt_1\"\x01,\"type\":\"x\"}",
    };
    static const char minimal[] = "{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1,\"livemode\":false}";
    paywall_event *e = NULL;
    char err[256], *big;
    size_t i, len;

    (void)state;
    parse_fails("", "empty");
    assert_int_equal(paywall_event_parse(NULL, 10, &e, err, sizeof(err)), -1);
    assert_null(e);
    for (i = 0; i < sizeof(not_objects) / sizeof(not_objects[0]); i++) {
        parse_fails(not_objects[i], NULL);
    }
    parse_fails("[]", "not a JSON object");
    for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        parse_fails(invalid[i], NULL);
    }
    /* a NUL inside the length is not the end of the document */
    parse_fails_len("{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1,\"livemode\":false}\0junk", sizeof(minimal) + 4,
                    NULL);
    /* the minimal event, and without each of its members */
    e = parse_ok(minimal);
    assert_null(e->api_version);
    paywall_event_free(e);
    parse_fails("{\"type\":\"x\",\"created\":1,\"livemode\":false}", "id is missing");
    parse_fails("{\"id\":\"evt_1\",\"created\":1,\"livemode\":false}", "type is missing");
    parse_fails("{\"id\":\"evt_1\",\"type\":\"x\",\"livemode\":false}", "created is missing");
    parse_fails("{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1}", "livemode is missing");
    parse_fails("{\"id\":\"evt_1\",\"object\":\"charge\",\"type\":\"x\",\"created\":1,\"livemode\":false}",
                "object is not");
    parse_fails("{\"id\":\"evt_1\",\"object\":1,\"type\":\"x\",\"created\":1,\"livemode\":false}", "object is not");
    parse_fails("{\"id\":\"evt_1\",\"type\":\"invoice.paid\",\"created\":1,\"livemode\":false}", "data is missing");

    /* size: exactly the limit parses (padded with spaces), one byte more is refused unread */
    big = malloc(PAYWALL_EVENT_BYTES_MAX + 1);
    assert_non_null(big);
    len = strlen(minimal);
    memcpy(big, minimal, len);
    memset(big + len, ' ', PAYWALL_EVENT_BYTES_MAX + 1 - len);
    e = NULL;
    assert_int_equal(paywall_event_parse(big, PAYWALL_EVENT_BYTES_MAX, &e, err, sizeof(err)), 0);
    paywall_event_free(e);
    parse_fails_len(big, PAYWALL_EVENT_BYTES_MAX + 1, "larger than");
    free(big);
}

static void test_depth(void **state)
{
    char json[1024];
    size_t n, depth, len;
    paywall_event *e;

    (void)state;
    /* the event object itself is level 1; "x" adds the rest */
    for (depth = PAYWALL_EVENT_DEPTH_MAX; depth <= PAYWALL_EVENT_DEPTH_MAX + 1; depth++) {
        len = (size_t)snprintf(json, sizeof(json),
                               "{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1,\"livemode\":false,\"x\":");
        for (n = 1; n < depth; n++) {
            json[len++] = '[';
        }
        for (n = 1; n < depth; n++) {
            json[len++] = ']';
        }
        json[len++] = '}';
        json[len] = '\0';
        if (depth == PAYWALL_EVENT_DEPTH_MAX) {
            e = parse_ok(json);
            paywall_event_free(e);
        } else {
            parse_fails(json, "nested deeper");
        }
    }
    /* brackets inside strings (with escaped quotes) are not nesting */
    len = (size_t)snprintf(json, sizeof(json),
                           "{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1,\"livemode\":false,\"x\":\"\\\"");
    for (n = 0; n < 200; n++) {
        json[len++] = '[';
    }
    memcpy(json + len, "\"}", 3);
    e = parse_ok(json);
    paywall_event_free(e);
}

static void test_error_buffer(void **state)
{
    paywall_event *e = NULL;
    char err[8];

    (void)state;
    /* no buffer at all: still refused, nothing written */
    assert_int_equal(paywall_event_parse("[]", 2, &e, NULL, 0), -1);
    assert_null(e);
    /* a short buffer is truncated, terminated */
    memset(err, 'x', sizeof(err));
    assert_int_equal(paywall_event_parse("[]", 2, &e, err, sizeof(err)), -1);
    assert_int_equal(strlen(err), sizeof(err) - 1);
    /* jansson's message quotes the input: made printable */
    {
        char big[128];

        assert_int_equal(paywall_event_parse("{\"id\":\x07\x1b[31m}", 13, &e, big, sizeof(big)), -1);
        assert_true(printable(big));
    }
}

/* ----------------------------------------------------------------------------------------------- plan table */

static void test_plans(void **state)
{
    paywall_plans plans;
    const paywall_plan *plan;

    (void)state;
    memset(&plans, 0, sizeof(plans));
    assert_null(paywall_plans_add(&plans, "digital", "price_1QaBcDLkdIwHu7ixDigital", NULL));
    assert_null(paywall_plans_add(&plans, "print", "price_1PaAbCLkdIwHu7ixPrintYear", "print"));
    assert_null(paywall_plans_add(&plans, "print-monthly", "price_2", "PRINT"));
    assert_int_equal(plans.nplans, 3);

    plan = paywall_plans_find_price(&plans, "price_1PaAbCLkdIwHu7ixPrintYear");
    assert_non_null(plan);
    assert_string_equal(plan->name, "print");
    assert_int_equal(plan->print, 1);
    plan = paywall_plans_find_price(&plans, "price_1QaBcDLkdIwHu7ixDigital");
    assert_non_null(plan);
    assert_int_equal(plan->print, 0);
    assert_null(paywall_plans_find_price(&plans, "price_1qabcdlkdiwhu7ixdigital"));
    assert_null(paywall_plans_find_price(&plans, "price_"));
    assert_null(paywall_plans_find_price(&plans, NULL));
    assert_null(paywall_plans_find_price(NULL, "price_2"));
    assert_string_equal(paywall_plans_find_name(&plans, "print-monthly")->price_id, "price_2");
    assert_null(paywall_plans_find_name(&plans, "Print"));

    /* the price id of a parsed event finds its plan */
    {
        paywall_event *e = parse_ok(fx_sub_created_2024);

        plan = paywall_plans_find_price(&plans, e->subscription.price_id);
        assert_non_null(plan);
        assert_string_equal(plan->name, "print");
        paywall_event_free(e);
    }

    assert_non_null(paywall_plans_add(&plans, "digital", "price_3", NULL)); /* name again */
    assert_non_null(paywall_plans_add(&plans, "other", "price_2", NULL));   /* price again */
    assert_non_null(paywall_plans_add(&plans, "x", "price_4", "digital"));  /* flag */
    assert_non_null(paywall_plans_add(&plans, "any", "price_5", NULL));     /* reserved by PaywallRequire */
    assert_non_null(paywall_plans_add(&plans, "ANY", "price_5", NULL));
    assert_non_null(paywall_plans_add(&plans, "a b", "price_5", NULL)); /* PaywallRequire's rule */
    assert_non_null(paywall_plans_add(&plans, "a,b", "price_5", NULL));
    assert_non_null(paywall_plans_add(&plans, "", "price_5", NULL));
    assert_non_null(paywall_plans_add(&plans, "y", "price-5", NULL)); /* price id charset */
    assert_non_null(paywall_plans_add(&plans, "y", "", NULL));
    assert_non_null(paywall_plans_add(&plans, NULL, "price_5", NULL));
    assert_non_null(paywall_plans_add(&plans, "y", NULL, NULL));
    assert_int_equal(plans.nplans, 3);
}

static void test_plans_full(void **state)
{
    static char names[PAYWALL_PLANS_MAX + 1][16], prices[PAYWALL_PLANS_MAX + 1][16];
    paywall_plans plans;
    size_t i;

    (void)state;
    memset(&plans, 0, sizeof(plans));
    for (i = 0; i < PAYWALL_PLANS_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "plan%zu", i);
        snprintf(prices[i], sizeof(prices[i]), "price_%zu", i);
        assert_null(paywall_plans_add(&plans, names[i], prices[i], NULL));
    }
    snprintf(names[i], sizeof(names[i]), "plan%zu", i);
    snprintf(prices[i], sizeof(prices[i]), "price_%zu", i);
    assert_non_null(paywall_plans_add(&plans, names[i], prices[i], NULL));
    assert_int_equal(plans.nplans, PAYWALL_PLANS_MAX);
    assert_string_equal(paywall_plans_find_price(&plans, "price_63")->name, "plan63");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkout_basil),
        cmocka_unit_test(test_checkout_2024),
        cmocka_unit_test(test_checkout_shapes),
        cmocka_unit_test(test_subscription_created_2024),
        cmocka_unit_test(test_subscription_updated_basil),
        cmocka_unit_test(test_subscription_deleted),
        cmocka_unit_test(test_subscription_shapes),
        cmocka_unit_test(test_invoice_paid_2024),
        cmocka_unit_test(test_invoice_failed_basil),
        cmocka_unit_test(test_invoice_shapes),
        cmocka_unit_test(test_other_types),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_replay_same_result),
        cmocka_unit_test(test_should_apply),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_bad_strings),
        cmocka_unit_test(test_id_lengths),
        cmocka_unit_test(test_text_dropped),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_documents),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_error_buffer),
        cmocka_unit_test(test_plans),
        cmocka_unit_test(test_plans_full),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
