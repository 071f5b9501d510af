// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {Merkle} from "./utils/Merkle.sol";
import {MockUSDai} from "../src/MockUSDai.sol";
import {StakedUSDaiQueue} from "../src/StakedUSDaiQueue.sol";
import {QEVSettlement} from "../src/QEVSettlement.sol";

abstract contract Base is Test {
    MockUSDai internal usdai;
    StakedUSDaiQueue internal vault;
    QEVSettlement internal settlement;

    address internal admin = address(0xA11CE);
    address internal keeper = address(0xBEEF);
    address internal feeRecipient = address(0xFEE);

    uint64 internal constant GENESIS = 1_700_000_000;
    uint64 internal constant WINDOW = 30 days;
    uint64 internal constant T1 = GENESIS + WINDOW;
    uint64 internal constant T2 = GENESIS + 2 * WINDOW;

    bytes32 internal constant SK = keccak256("auction secret key");
    bytes32 internal constant PK = keccak256("auction public key");

    function setUp() public virtual {
        vm.warp(GENESIS);
        usdai = new MockUSDai(admin);
        vault = new StakedUSDaiQueue(address(usdai), GENESIS, admin);
        settlement = new QEVSettlement(address(vault), admin, 0, address(0));
        vm.startPrank(admin);
        vault.grantRole(vault.QEV_SETTLEMENT_ROLE(), address(settlement));
        vault.grantRole(vault.STRATEGY_ADMIN_ROLE(), keeper);
        settlement.grantRole(settlement.KEEPER_ROLE(), keeper);
        vm.stopPrank();
        vm.label(address(vault), "vault");
        vm.label(address(settlement), "settlement");
        vm.label(address(usdai), "usdai");
    }

    function _deposit(address who, uint256 amount) internal returns (uint256 shares) {
        vm.prank(admin);
        usdai.mint(who, amount);
        vm.startPrank(who);
        usdai.approve(address(vault), amount);
        shares = vault.deposit(amount, who);
        vm.stopPrank();
    }

    function _request(address who, uint256 shares) internal returns (uint256) {
        vm.prank(who);
        return vault.requestRedeem(shares, who, who);
    }

    function _commit(uint64 auctionId) internal {
        vm.prank(keeper);
        settlement.commitAuctionKey(auctionId, PK, keccak256(abi.encodePacked(SK)));
    }

    /// @dev `commitBook(T, root, count)` from the keeper (settleAuction requires the committed root).
    function _commitBook(uint64 auctionId, bytes32 root) internal {
        vm.prank(keeper);
        settlement.commitBook(auctionId, root, root == bytes32(0) ? 0 : 1);
    }

    /// @dev Computed locally (no external call, so vm.prank/expectRevert apply to the claim itself).
    function _leaf(uint64 auctionId, QEVSettlement.Allocation memory a) internal pure returns (bytes32) {
        return keccak256(
            bytes.concat(
                keccak256(abi.encode(auctionId, a.redemptionId, a.controller, a.sharesFilled, a.sharesBurnt, a.payout))
            )
        );
    }

    /// @dev Allocation per DESIGN 5: burnt = floor(x*b/1e4), payout = floor((x - burnt) * price / 1e18).
    function _alloc(uint256 redemptionId, address controller, uint256 shares, uint256 bp, uint256 price)
        internal
        pure
        returns (QEVSettlement.Allocation memory a)
    {
        uint256 burnt = shares * bp / 10_000;
        a = QEVSettlement.Allocation({
            redemptionId: redemptionId,
            controller: controller,
            sharesFilled: shares,
            sharesBurnt: burnt,
            payout: (shares - burnt) * price / 1e18
        });
    }

    function _tree(uint64 auctionId, QEVSettlement.Allocation[] memory allocs)
        internal
        pure
        returns (bytes32[] memory tree)
    {
        bytes32[] memory leaves = new bytes32[](allocs.length);
        for (uint256 i; i < allocs.length; i++) {
            leaves[i] = _leaf(auctionId, allocs[i]);
        }
        tree = Merkle.build(leaves);
    }

    function _totals(QEVSettlement.Allocation[] memory allocs)
        internal
        pure
        returns (uint256 shares, uint256 burnt, uint256 payout)
    {
        for (uint256 i; i < allocs.length; i++) {
            shares += allocs[i].sharesFilled;
            burnt += allocs[i].sharesBurnt;
            payout += allocs[i].payout;
        }
    }

    function _settle(uint64 auctionId, QEVSettlement.Allocation[] memory allocs)
        internal
        returns (bytes32[] memory tree)
    {
        tree = _tree(auctionId, allocs);
        (uint256 s, uint256 b, uint256 p) = _totals(allocs);
        _commitBook(auctionId, keccak256("book"));
        vm.prank(keeper);
        settlement.settleAuction(auctionId, tree[0], keccak256("book"), s, b, p);
    }

    function _proof(uint64 auctionId, bytes32[] memory tree, QEVSettlement.Allocation memory a)
        internal
        pure
        returns (bytes32[] memory)
    {
        return Merkle.proof(tree, Merkle.indexOf(tree, _leaf(auctionId, a)));
    }

    function _claim(uint64 auctionId, bytes32[] memory tree, QEVSettlement.Allocation memory a) internal {
        bytes32[] memory p = _proof(auctionId, tree, a);
        settlement.claim(auctionId, a.redemptionId, a.controller, a.sharesFilled, a.sharesBurnt, a.payout, p);
    }

    function _pending(uint256 id) internal view returns (uint256 p) {
        (, , p) = vault.qevRedemptionInfo(id);
    }
}
